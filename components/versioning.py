"""What counts as a version, a pinned version and an image reference.

One source of truth for the config models (components/config/) and the
policy pack (policy/): a release can only be verified, promoted and rolled
back if its version names exactly one image, forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tags that are moved on purpose by registries and CI: never a version.
MUTABLE_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "dev", "nightly", "canary"})

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# Ref: https://github.com/distribution/reference/blob/main/regexp.go (tag grammar)
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A commit build: `sha-` and the commit's hex digits, as in PINNED_TAG_RE (`sha-` alone is only the prefix).
COMMIT_TAG_RE = re.compile(r"^sha-[0-9a-f]{7,40}$")
# Immutable by convention: semantic versions (1.4.2, v2.0.0-rc.1) and commit builds (sha-19b9b98).
PINNED_TAG_RE = re.compile(
    r"^(v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?|sha-[0-9a-f]{7,40})$"
)
REPOSITORY_RE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
)


def version_problem(version: str) -> str | None:
    """Why `version` cannot name a release, or None when it can."""
    if not version:
        return "a version is required (an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256: digest)"
    if version.startswith("sha256:"):
        return None if DIGEST_RE.match(version) else "a digest must be sha256: followed by 64 lowercase hex digits"
    if version.lower() in MUTABLE_TAGS:
        # Named after the policy that enforces the same rule on every image (policy/rules/).
        return (f"'{version}' is a moving tag (disallow-latest-tag); use an immutable version such as "
                "1.4.2, sha-19b9b98 or a sha256: digest")
    if not TAG_RE.match(version):
        return "a tag may hold letters, digits, '_', '.' and '-', start with a letter, digit or '_', and be at most 128 characters"
    if version.lower().startswith("sha-") and not COMMIT_TAG_RE.match(version):
        return "a commit build is sha- followed by 7 to 40 lowercase hex digits of the commit, e.g. sha-19b9b98"
    if version in ("v", "V") or version[-1] in "._-":
        return f"'{version}' looks cut short (only a prefix); use a whole version such as 1.4.2 or v1.4.2"
    return None


def is_pinned(version: str) -> bool:
    """True for versions that are immutable by construction or by convention."""
    return bool(DIGEST_RE.match(version) or PINNED_TAG_RE.match(version))


def image_reference(repository: str, version: str) -> str:
    """`repo:tag` for tags, `repo@sha256:...` for digests."""
    separator = "@" if version.startswith("sha256:") else ":"
    return f"{repository}{separator}{version}"


@dataclass(frozen=True)
class ImageReference:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def version(self) -> str | None:
        return self.digest or self.tag


def parse_image_reference(reference: str) -> ImageReference:
    """Split an image reference into repository, tag and digest (either may be None)."""
    rest, _, digest = reference.partition("@")
    # A ':' after the last '/' separates the tag; one before it is a registry port.
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        repository, tag = rest[:colon], rest[colon + 1:]
    else:
        repository, tag = rest, None
    return ImageReference(repository=repository, tag=tag or None, digest=digest or None)


# Where a workload says which version it runs. One definition for the program
# (components/targets/) and the policy pack (policy/rules/_workloads.py).
VERSION_LABEL = "app.kubernetes.io/version"
# The full version (a digest is 71 characters): a Kubernetes annotation (no length limit) on
# workloads and pod templates, and a Docker label of the same name (Docker labels have none).
VERSION_ANNOTATION = "deploy.platform/version"
# Ref: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
LABEL_VALUE_MAX = 63


def version_label_value(version: str) -> str:
    """The version as a Kubernetes label value: at most 63 characters, no ':' and alphanumeric at
    both ends. A digest keeps its first 12 hex digits (`sha256-<12 hex>`); it is a readable
    selector value, not an identity: the full version is in VERSION_ANNOTATION."""
    if version.startswith("sha256:"):
        return "sha256-" + version.removeprefix("sha256:")[:12]
    return version[:LABEL_VALUE_MAX].rstrip("._-")


def version_labels(version: str) -> dict[str, str]:
    """The version label every workload carries (with the other standard labels)."""
    return {VERSION_LABEL: version_label_value(version)}


def version_annotations(version: str) -> dict[str, str]:
    """The full version, unshortened: Kubernetes annotations, or Docker labels (next to version_labels)."""
    return {VERSION_ANNOTATION: version}
