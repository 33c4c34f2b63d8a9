"""disallow-latest-tag: no image may float on `latest`, spelled out or implied."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._images import IMAGE_RESOURCE_TYPES, image_uses, parse_image
from ._workloads import is_kubernetes_workload, labels_of, service_name, subject

NAME = "disallow-latest-tag"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in IMAGE_RESOURCE_TYPES and not is_kubernetes_workload(args.resource_type):
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    for use in image_uses(args.resource_type, args.props):
        if not isinstance(use.image, str) or not use.image:
            continue
        ref = parse_image(use.image)
        who = subject(service, use.where)
        if ref.tag == "latest":
            report_violation(f"{who} uses image '{use.image}' with the moving tag 'latest'", None)
        elif ref.tag is None and ref.digest is None:
            report_violation(f"{who} uses image '{use.image}' without a tag or digest, which pulls 'latest'", None)


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
