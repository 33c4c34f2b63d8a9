"""require-pinned-images: every image names exactly one build, forever."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._images import IMAGE_RESOURCE_TYPES, image_uses, is_pinned_image, parse_image
from ._workloads import is_kubernetes_workload, labels_of, service_name, subject

NAME = "require-pinned-images"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in IMAGE_RESOURCE_TYPES and not is_kubernetes_workload(args.resource_type):
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    for use in image_uses(args.resource_type, args.props):
        if not isinstance(use.image, str) or not use.image:
            continue
        if not is_pinned_image(parse_image(use.image)):
            report_violation(
                f"{subject(service, use.where)} uses image '{use.image}', which is not pinned "
                "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)",
                None,
            )


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
