"""disallow-latest-tag: no image may float on `latest`, spelled out or implied."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._images import each_image, parse_image

NAME = "disallow-latest-tag"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, image in each_image(args):
        ref = parse_image(image)
        if ref.tag == "latest":
            report_violation(f"{who} uses image '{image}' with the moving tag 'latest'", None)
        elif ref.tag is None and ref.digest is None:
            report_violation(f"{who} uses image '{image}' without a tag or digest, which pulls 'latest'", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that no container image uses the 'latest' tag or omits both tag and digest.",
    validate=validate,
    # Mandatory everywhere: 'latest' makes a preview meaningless, since the image can change under it.
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps=(
        "Set the service's version in stack config to an immutable tag (1.4.2, sha-19b9b98) or a sha256 "
        "digest, so the image reference is <repository>:<version> or <repository>@sha256:<digest>."
    ),
    url=doc_url(NAME),
)
