"""require-pinned-images: every image names exactly one build, forever."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._images import each_image, is_pinned_image, parse_image

NAME = "require-pinned-images"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, image in each_image(args):
        if not is_pinned_image(parse_image(image)):
            report_violation(f"{who} uses image '{image}', which is not pinned "
                             "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every container image is pinned to an immutable version tag or a sha256 digest.",
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        "Use a semantic version (1.4.2, v2.0.0-rc.1), a commit build tag (sha-19b9b98) or a sha256 digest. "
        "Tags such as 16.4 or stable can be moved; for third-party images without such tags, pin the digest "
        "(<repository>:<tag>@sha256:<digest>)."
    ),
    url=doc_url(NAME),
)
