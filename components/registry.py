"""Image digests as the registry resolves them (Docker Registry HTTP API v2 / OCI distribution).

`HEAD /v2/<repository>/manifests/<tag or digest>` answers with `Docker-Content-Digest`, the
digest of the manifest the registry serves for that tag. The Accept header lists every manifest
type a runtime pulls (OCI index and manifest, Docker manifest list and v2 manifest), so the
digest is the one a pull resolves to, not a schema-1 conversion.
Ref: https://distribution.github.io/distribution/spec/api/#existing-manifests
Ref: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#checking-if-content-exists-in-the-registry
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from components.versioning import DIGEST_RE

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
DEFAULT_REGISTRY = "registry-1.docker.io"  # what a reference without a registry host means


@dataclass(frozen=True)
class Resolved:
    image: str  # repository, with its registry host
    version: str  # tag or sha256: digest, as configured
    digest: str | None
    error: str | None = None

    def as_dict(self) -> dict:
        return {"image": self.image, "version": self.version, "digest": self.digest, "error": self.error}


def split_repository(repository: str) -> tuple[str, str]:
    """(registry host, repository path): `127.0.0.1:5000/shop/api` -> ("127.0.0.1:5000", "shop/api")."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DEFAULT_REGISTRY, repository if rest else f"library/{repository}"


def manifest_url(repository: str, version: str) -> str:
    host, path = split_repository(repository)
    # Plain HTTP only for a registry on this machine (the local registry); TLS everywhere else.
    local = host.split(":")[0] in ("127.0.0.1", "localhost", "[::1]")
    return f"{'http' if local else 'https'}://{host}/v2/{path}/manifests/{version}"


def resolve(repository: str, version: str, timeout: float = 10) -> Resolved:
    """The digest the registry serves for repository:version, or the reason there is none."""
    url = manifest_url(repository, version)
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            digest = response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as error:
        reason = {404: "not in the registry (no such tag or repository)",
                  401: "the registry wants credentials deployctl does not have"}.get(error.code, f"HTTP {error.code}")
        return Resolved(repository, version, None, f"{repository}:{version}: {reason} ({url})")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Resolved(repository, version, None, f"{repository}:{version}: registry unreachable: {reason} ({url})")
    if not digest or not DIGEST_RE.match(digest):
        return Resolved(repository, version, None, f"{repository}:{version}: the registry sent no sha256 "
                                                   f"Docker-Content-Digest ({url})")
    if version.startswith("sha256:") and digest != version:
        return Resolved(repository, version, digest, f"{repository}@{version}: the registry serves {digest}")
    return Resolved(repository, version, digest)


VERSION_LABEL = "org.opencontainers.image.version"  # OCI image-spec annotations.md, as a config label
LINUX_AMD64 = {"os": "linux", "architecture": "amd64"}


def _get_json(url: str, accept: str, timeout: float) -> tuple[dict, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read()), response.headers.get("Content-Type", "")


def version_label(repository: str, digest: str, timeout: float = 10) -> str:
    """The `org.opencontainers.image.version` label of the image at repository@digest: what a
    digest-pinned release calls itself, so a smoke test can compare it with what the service
    reports. Follows an index to its linux/amd64 manifest, then reads the config blob.
    Raises LookupError saying what is missing."""
    host, path = split_repository(repository)
    base = manifest_url(repository, digest).rsplit("/manifests/", 1)[0]
    try:
        manifest, media_type = _get_json(f"{base}/manifests/{digest}", MANIFEST_TYPES, timeout)
        if "index" in media_type or "manifest.list" in media_type or "manifests" in manifest:
            chosen = next((m for m in manifest.get("manifests", [])
                           if all((m.get("platform") or {}).get(k) == v for k, v in LINUX_AMD64.items())), None)
            if chosen is None:
                raise LookupError(f"{repository}@{digest}: the index has no linux/amd64 image")
            manifest, _ = _get_json(f"{base}/manifests/{chosen['digest']}", MANIFEST_TYPES, timeout)
        config_digest = (manifest.get("config") or {}).get("digest")
        if not config_digest:
            raise LookupError(f"{repository}@{digest}: the manifest names no config blob")
        config, _ = _get_json(f"{base}/blobs/{config_digest}", "application/json", timeout)
    except urllib.error.HTTPError as error:
        raise LookupError(f"{repository}@{digest}: HTTP {error.code} from the registry at {host}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise LookupError(f"{repository}@{digest}: registry unreachable or garbled: "
                          f"{getattr(error, 'reason', error)}") from None
    label = ((config.get("config") or {}).get("Labels") or {}).get(VERSION_LABEL)
    if not label:
        raise LookupError(f"{repository}@{digest}: the image has no {VERSION_LABEL} label, so what it should "
                          "report cannot be known (label the image, or set smokeTest.checkVersion false)")
    return label
