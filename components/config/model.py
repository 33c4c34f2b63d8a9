"""The base every configuration model of components/config/ shares, and the
value types their fields use: each refuses a malformed value with what would be valid.

Well-kept validators where they exist: cronsim for cron schedules, email-validator for e-mail
addresses, pydantic's own URL type and the standard library's ipaddress. Kubernetes names and
host names follow RFC 1123 exactly as the API server checks them (no library carries those rules).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, NamedTuple

from cronsim import CronSim, CronSimError
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from components.versioning import REPOSITORY_RE, version_problem

Port = Annotated[int, Field(ge=1, le=65535)]
NonEmpty = Annotated[str, Field(min_length=1)]


def stack_key(name: str) -> str:
    """The camelCase key a stack file uses: `cpu_request` -> `cpuRequest`, `restarts_15m` -> `restarts15m`
    (pydantic's to_camel would say `restarts15M`, a key nobody writes and Pulumi.yaml does not document)."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


# `pulumi config set --path k 0.5` stores a fraction as text ("true"/"false" and integers it
# stores typed). Ref: https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/
_CLI_FRACTION_RE = re.compile(r"^-?\d*\.\d+$")


class CliFractions(BaseModel):
    """Takes a fraction written as text, the one number `pulumi config set --path` stores as text."""

    @model_validator(mode="before")
    @classmethod
    def _cli_fractions(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        floats = {key for name, field in cls.model_fields.items() if field.annotation is float
                  for key in (name, field.alias)}
        return {key: float(value) if key in floats and isinstance(value, str) and _CLI_FRACTION_RE.match(value)
                else value for key, value in data.items()}


class Model(CliFractions):
    """Strict base: unknown keys are errors, stack files use camelCase, and nothing is coerced.

    Strict because coercion hides mistakes: `replicas: "2"`, `public: "no"` or `port: "8080"` would
    otherwise pass as 2, False and 8080. Values inside the stack file's objects reach the program
    with their YAML types (Pulumi hands objects over as JSON), so a number written as a number is
    a number; only top-level values arrive as text, and the schema's top-level keys are text or
    objects. The one exception is a fraction such as "0.5" (see CliFractions).
    """

    model_config = ConfigDict(
        extra="forbid", alias_generator=stack_key, populate_by_name=True, frozen=True, strict=True
    )


class Problem(NamedTuple):
    """A problem found by a model validator (across keys, or in a map's names), reported at `key`
    relative to the model that raises it."""

    key: str
    message: str


class ConfigProblems(ValueError):
    """Raised by a model validator: every cross-key problem it found, each at its own key."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))
        self.problems = problems


def listed_once(value: list[str], what: str = "") -> list[str]:
    """A list validator's check that no item is named twice (`what`: the items, for the message)."""
    twice = sorted({item for item in value if value.count(item) > 1})
    if twice:
        raise ValueError(f"names {twice} more than once; list each {what + ' ' if what else ''}once")
    return value


def refuse(problems: list[Problem]) -> None:
    if problems:
        raise ConfigProblems(problems)


# Ref: https://github.com/kubernetes/apimachinery/blob/master/pkg/util/validation/validation.go
# (IsDNS1123Label, IsDNS1123Subdomain: the rules the API server applies to names and hosts).
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_HELP = "lowercase letters, digits and '-', starting and ending with a letter or digit"


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL_RE.match(value):
        raise ValueError(f"expected a DNS label (RFC 1123): {_DNS_LABEL_HELP}, at most 63 characters, e.g. shop-dev")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not all(_DNS_LABEL_RE.match(label) and len(label) <= 63 for label in value.split(".")):
        raise ValueError("expected a Kubernetes object name (RFC 1123 subdomain): dot-separated labels of "
                         f"{_DNS_LABEL_HELP}, at most 253 characters, e.g. fast-ssd")
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host_name(value: str) -> str:
    # What a Kubernetes Ingress accepts as spec.rules[].host and Traefik matches in Host().
    if value.startswith("*."):
        raise ValueError("expected a host name; wildcards are not routed here (the edge matches exact hosts): "
                         "list each host, e.g. shop.example.com")
    if _is_ip(value):
        raise ValueError("expected a host name, not an IP address (certificates and Host rules need a name), "
                         "e.g. shop.example.com")
    try:
        _dns_subdomain(value)
    except ValueError:
        raise ValueError("expected a host name (RFC 1123): dot-separated labels of "
                         f"{_DNS_LABEL_HELP}, each at most 63 characters; no scheme, port or path; "
                         "e.g. shop.example.com") from None
    return value


def is_host_or_ip(value: str) -> bool:
    """An IP address or an RFC 1123 host name (a relay such as an SMTP smarthost may be either)."""
    if _is_ip(value):
        return True
    try:
        _host_name(value)
    except ValueError:
        return False
    return True


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"expected an e-mail address such as ops@example.com ({str(error).rstrip('.')})") from None
    return value


# A key of this stack's config (`pulumi config set --secret platform:<key>`), never a value.
_CONFIG_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _config_key(value: str) -> str:
    if not _CONFIG_KEY_RE.match(value):
        raise ValueError("expected the name of a secret config key such as mainDbPassword (a letter, then "
                         "letters, digits, '_' or '-'), set with `pulumi config set --secret`")
    return value


# Both schedulers take five numeric (or named) fields: Kubernetes CronJobs (robfig/cron's standard
# parser) and busybox crond in the Docker target's job containers. Neither knows L, W, #, ? or H,
# macros such as @daily, or a seconds field.
# Ref: https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#schedule-syntax
_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_CRON_TOKEN_RE = re.compile(r"^(?:[0-9*,/-]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|"
                            r"SUN|MON|TUE|WED|THU|FRI|SAT)+$", re.IGNORECASE)
CRON_HELP = ("five fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, "
             "day of week 0-6 or SUN-SAT (Sunday is 0), e.g. '0 2 * * *'")
_CRON_EPOCH = datetime(2025, 1, 1)


def cron_runs(schedule: str, count: int) -> list[datetime]:
    """The first `count` times a (valid) schedule fires after 2025-01-01 00:00."""
    runs = CronSim(schedule, _CRON_EPOCH)
    return [next(runs) for _ in range(count)]


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"expected a cron schedule of {CRON_HELP}")
    for name, token in zip(_CRON_FIELDS, fields):
        if not _CRON_TOKEN_RE.match(token):
            raise ValueError(f"the {name} field '{token}' uses syntax Kubernetes and crond do not know; "
                             f"expected {CRON_HELP}")
    # robfig/cron's day of week is 0-6; cronsim would also take 7.
    if any(int(number) > 6 for number in re.findall(r"(?<![/\d])\d+", fields[4])):
        raise ValueError(f"the day of week field '{fields[4]}' is out of range; expected {CRON_HELP}")
    try:
        cron_runs(value, 1)
    except (CronSimError, StopIteration) as error:
        # cronsim names the field ("Bad hour"), and refuses dates that never come (30 February).
        detail = str(error).lower() or "bad schedule"
        raise ValueError(f"{detail}: a value out of range, a reversed range, a zero step or a day that never "
                         f"comes (such as 30 February); expected {CRON_HELP}") from None
    return value


_HTTP_URL = TypeAdapter(AnyHttpUrl)


def _http_url(value: str) -> str:
    try:
        _HTTP_URL.validate_python(value)
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Input should be a valid URL, ")
        raise ValueError(f"expected an http:// or https:// URL such as https://127.0.0.1:30443 ({reason})") from None
    return value


# RFC 3986 path characters; no query, fragment, whitespace or empty, '.' and '..' segments.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def _url_path(value: str) -> str:
    segments = value.split("/")[1:]
    if not _PATH_RE.match(value) or any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", ".."):
        raise ValueError("expected an absolute URL path such as /api: starting with '/', without spaces, "
                         "'?', '#', '//' or '.'/'..' segments")
    return value


def _version(value: str) -> str:
    problem = version_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _repository(value: str) -> str:
    if ":" in value.rsplit("/", 1)[-1] or "@" in value:
        raise ValueError("give the image repository without a tag or digest; the version is a key of its own")
    if not REPOSITORY_RE.match(value):
        raise ValueError("not a valid image repository (lowercase, e.g. registry.local:5000/shop/api)")
    return value


# Ref: https://www.pulumi.com/docs/iac/concepts/stacks/ (stack names; `org/project/stack` fully qualified)
_STACK_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")


def _stack_name(value: str) -> str:
    if not _STACK_RE.match(value):
        raise ValueError("expected a Pulumi stack name, `stack` or fully qualified `organization/project/stack` "
                         "(letters, digits, '_', '.' and '-'), e.g. organization/platform/staging")
    return value


def _ip_address(value: str) -> str:
    if not _is_ip(value):
        raise ValueError("expected an IP address such as 127.0.0.1 or 0.0.0.0 (Docker binds published ports to an IP)")
    return value


def _command(value: list[str]) -> list[str]:
    if not value or not value[0].strip():
        raise ValueError("expected a program and its arguments, e.g. [/app/worker, --queue, default]")
    return value


Version = Annotated[str, AfterValidator(_version)]
ImageRepository = Annotated[str, AfterValidator(_repository)]
StackName = Annotated[str, AfterValidator(_stack_name)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
HostName = Annotated[str, AfterValidator(_host_name)]
EmailAddress = Annotated[str, AfterValidator(_email)]
ConfigKey = Annotated[str, AfterValidator(_config_key)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]
Command = Annotated[list[str], AfterValidator(_command)]
