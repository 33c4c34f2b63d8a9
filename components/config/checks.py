"""The checks across keys of a stack's configuration, run when PlatformConfig is validated (part of
components/config/): each problem is reported at the key to change, relative to `platform:`.

What a target needs of the rest of the configuration (the Kubernetes edge's node ports, a render
directory that would hold a private key) is the target's to check: components/targets/config_checks.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from components.config.migrations import migration_problems
from components.config.model import Problem
from components.config.volumes import volume_problems

if TYPE_CHECKING:  # platform.py imports this module
    from components.config.platform import PlatformConfig


def cross_key_problems(config: PlatformConfig) -> list[Problem]:
    """Every problem across keys of `config`, in the order the operator reads them."""
    return (_name_problems(config) + _target_problems(config) + _smoke_test_problems(config)
            + _promotion_problems(config) + _secret_key_problems(config) + migration_problems(config)
            + volume_problems(config))


def schema_keys(model: type[BaseModel]) -> frozenset[str]:
    """The stack file's top-level keys (`platform:<key>`) of `model`; secret config keys sit beside them."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def _target_problems(config: PlatformConfig) -> list[Problem]:
    # Imported here, when a stack is validated: components/targets imports these models.
    from components.targets.config_checks import target_problems

    return target_problems(config)


def _name_problems(config: PlatformConfig) -> list[Problem]:
    problems = [Problem(f"services.{name}", f"'{name}' names both a service and a database; rename one")
                for name in sorted(set(config.services) & set(config.databases))]
    for name, service in config.services.items():
        unknown = [db for db in service.databases if db not in config.databases]
        if unknown:
            problems.append(Problem(f"services.{name}.databases", f"names unknown databases {unknown}; "
                                    f"expected names from databases: {sorted(config.databases)}"))
    routed: dict[str, str] = {}
    for name, service in config.services.items():
        if service.public:
            prefix = service.path_prefix.rstrip("/") or "/"
            if prefix in routed:
                problems.append(Problem(f"services.{name}.pathPrefix",
                                        f"'{service.path_prefix}' is also services.{routed[prefix]}.pathPrefix; "
                                        "the edge would route both services' traffic on one prefix: give each its own"))
            routed.setdefault(prefix, name)
    return problems


def _smoke_test_problems(config: PlatformConfig) -> list[Problem]:
    problems = []
    host = config.smoke_test.host_header
    if host is not None and host not in config.edge.hosts:
        problems.append(Problem("smokeTest.hostHeader", f"'{host}' is not one of edge.hosts {config.edge.hosts}, "
                                                        "so the edge would route no smoke test request"))
    return problems


def _promotion_problems(config: PlatformConfig) -> list[Problem]:
    problems = [Problem(f"promotion.overrides.{name}", f"'{name}' is not a service; expected one of "
                                                       f"{sorted(config.services)}")
                for name in config.promotion.overrides if name not in config.services]
    if config.promotion.require_verified and not config.promotion.staging_stack:
        problems.append(Problem("promotion.requireVerified", "needs promotion.stagingStack, the stack whose "
                                                             "verified versions this one may run"))
    return problems


def _secret_key_problems(config: PlatformConfig) -> list[Problem]:
    # A secret named like a schema key would take that key's place in the stack file.
    return [Problem(path, f"'{key}' is a key of the schema (platform:{key}); name the secret something else, "
                          "e.g. mainDbPassword")
            for key, path in config.secret_keys().items() if key in schema_keys(type(config))]
