"""Bad stack configuration stops the program with one message naming file, key, expected and found."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from components.config import PlatformConfig
from components.config.loading import ConfigError, parse_platform_config, resolve_secrets
from support import raw_stack_config, run_program


def dev() -> dict[str, Any]:
    return copy.deepcopy(raw_stack_config("dev"))


def mutate(path: str, value: Any) -> Callable[[dict], None]:
    def apply(raw: dict) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return apply


def delete(path: str) -> Callable[[dict], None]:
    def apply(raw: dict) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        del node[leaf]
    return apply


BAD_CONFIG = [
    # (case id, mutation, key path the message must name, words it must contain)
    ("version_latest", mutate("services.api.version", "latest"), "platform:services.api.version", "moving tag"),
    ("version_stable_tag", mutate("services.web.version", "stable"), "platform:services.web.version", "moving tag"),
    ("version_missing", delete("services.api.version"), "platform:services.api.version", "required"),
    ("version_empty", mutate("services.api.version", ""), "platform:services.api.version", "required"),
    ("version_bad_digest", mutate("services.api.version", "sha256:abc"), "platform:services.api.version", "64"),
    ("version_with_space", mutate("services.api.version", "1.0 beta"), "platform:services.api.version", "tag"),
    ("image_with_tag", mutate("services.api.image", "127.0.0.1:5000/shop/api:1.0.0"),
     "platform:services.api.image", "without a tag"),
    ("image_uppercase", mutate("services.api.image", "Registry/Shop/API"), "platform:services.api.image", "repository"),
    ("port_zero", mutate("services.api.port", 0), "platform:services.api.port", "greater than or equal to 1"),
    ("port_too_large", mutate("services.api.port", 70000), "platform:services.api.port", "less than or equal to 65535"),
    ("port_as_text", mutate("services.api.port", "http"), "platform:services.api.port", "expected a whole number"),
    ("replicas_zero", mutate("services.api.replicas", 0), "platform:services.api.replicas", "greater than or equal to 1"),
    ("replicas_negative", mutate("services.web.replicas", -2), "platform:services.web.replicas", "greater than"),
    ("replicas_wrong_type", mutate("services.api.replicas", "two"), "platform:services.api.replicas", "whole number"),
    ("unknown_service_key", mutate("services.api.replica", 2), "platform:services.api.replica", "unknown key"),
    ("unknown_top_level_key", mutate("serivces", {}), "platform:serivces", "unknown key"),
    ("component_unknown", mutate("services.api.component", "cache"), "platform:services.api.component", "'web'"),
    ("api_without_port", delete("services.api.port"), "platform:services.api", "needs a port"),
    ("service_name_uppercase", lambda raw: raw["services"].update(API=raw["services"].pop("api")),
     "platform:services", "DNS label"),
    ("service_and_database_share_name", lambda raw: raw["services"].update(main=raw["services"].pop("worker")),
     "platform:services.main", "both a service and a database"),
    ("unknown_database_reference", mutate("services.api.databases", ["orders"]), "platform:services.api.databases",
     "unknown databases ['orders']"),
    ("env_name_invalid", mutate("services.web.env", {"API-URL": "x"}), "platform:services.web.env", "environment variable"),
    ("env_and_secret_clash", mutate("services.api.env", {"SESSION_SIGNING_KEY": "x"}), "platform:services.api",
     "both in env and in secrets"),
    ("cpu_limit_negative", mutate("services.api.resources.cpuLimit", "-1"), "platform:services.api.resources.cpuLimit",
     "CPU quantity"),
    ("memory_limit_garbage", mutate("services.api.resources.memoryLimit", "lots"),
     "platform:services.api.resources.memoryLimit", "memory quantity"),
    ("request_above_limit", mutate("services.api.resources.memoryRequest", "2Gi"), "platform:services.api.resources",
     "above memoryLimit"),
    ("health_timeout_zero", mutate("services.api.healthCheck", {"timeoutSeconds": 0}),
     "platform:services.api.healthCheck.timeoutSeconds", "greater than or equal to 1"),
    ("health_path_relative", mutate("services.api.healthCheck", {"path": "healthz"}),
     "platform:services.api.healthCheck.path", "start with '/'"),
    ("restart_policy_unknown", mutate("services.api.restartPolicy", "sometimes"), "platform:services.api.restartPolicy",
     "'always'"),
    ("log_rotation_zero_files", mutate("services.api.logRotation", {"maxFiles": 0}),
     "platform:services.api.logRotation.maxFiles", "greater than or equal to 1"),
    ("log_rotation_bad_size", mutate("services.api.logRotation", {"maxSize": "ten"}),
     "platform:services.api.logRotation.maxSize", "positive size"),
    ("canary_weight_over_100", mutate("services.api.canary", {"version": "1.5.0", "weight": 150}),
     "platform:services.api.canary.weight", "less than or equal to 100"),
    ("canary_latest", mutate("services.api.canary", {"version": "latest", "weight": 10}),
     "platform:services.api.canary.version", "moving tag"),
    ("database_version_latest", mutate("databases.main.version", "latest"), "platform:databases.main.version",
     "moving tag"),
    ("database_port_invalid", mutate("databases.main.port", 0), "platform:databases.main.port", "greater than"),
    ("database_password_secret_missing", delete("databases.main.passwordSecret"),
     "platform:databases.main.passwordSecret", "required"),
    ("backup_schedule_invalid", mutate("databases.main.backup", {"schedule": "daily"}),
     "platform:databases.main.backup.schedule", "cron"),
    ("backup_retention_zero", mutate("databases.main.backup", {"retentionDays": 0}),
     "platform:databases.main.backup.retentionDays", "greater than or equal to 1"),
    ("edge_without_hosts", mutate("edge.hosts", []), "platform:edge.hosts", "at least 1"),
    ("edge_missing", delete("edge"), "platform:edge", "required"),
    ("tls_acme_without_email", mutate("edge.tls", {"mode": "acme"}), "platform:edge.tls", "email"),
    ("target_unknown", mutate("target", "nomad"), "platform:target", "'docker'"),
    ("environment_unknown", mutate("environment", "qa"), "platform:environment", "'dev'"),
    ("override_for_unknown_service", mutate("promotion", {"overrides": {"cart": {"version": "1.0.0",
     "reason": "hotfix approved by on-call"}}}), "platform:promotion.overrides.cart", "not a service"),
    ("override_reason_too_short", mutate("promotion", {"overrides": {"api": {"version": "1.0.0", "reason": "x"}}}),
     "platform:promotion.overrides.api.reason", "at least 10"),
    ("require_verified_without_staging", mutate("promotion", {"requireVerified": True}),
     "platform:promotion.requireVerified", "needs promotion.stagingStack"),
    ("no_services", mutate("services", {}), "platform:services", "at least 1"),
    ("node_port_out_of_range", mutate("edge.httpsPort", 8443), "platform:edge.httpsPort", "is 8443"),
    ("local_ca_key_rendered_to_disk", lambda raw: (mutate("edge.tls", {"mode": "local-ca"})(raw),
                                                   mutate("kubernetes.renderToDirectory", "rendered/dev")(raw)),
     "platform:kubernetes.renderToDirectory", "local-ca"),
    ("tls_mode_unknown", mutate("edge.tls", {"mode": "letsencrypt"}), "platform:edge.tls.mode", "'local-ca'"),
    # Numbers and booleans written as text are refused, not coerced, and the message says what to write.
    ("replicas_as_text", mutate("services.api.replicas", "2"), "platform:services.api.replicas",
     "not text: write it without quotes"),
    ("public_as_text", mutate("services.api.public", "false"), "platform:services.api.public",
     "expected true or false, not text"),
    ("ratio_as_percentage", mutate("rollout.successRate", "90%"), "platform:rollout.successRate", "expected a number"),
    ("float_given_as_quoted_integer", mutate("smokeTest", {"delaySeconds": "2"}), "platform:smokeTest.delaySeconds",
     "write it without quotes"),
    ("version_as_yaml_number", mutate("services.api.version", 1.4), "platform:services.api.version", "quote it"),
    ("cron_hour_out_of_range", mutate("databases.main.backup", {"schedule": "0 24 * * *"}),
     "platform:databases.main.backup.schedule", "bad hour"),
    ("cron_never_fires", mutate("databases.main.backup", {"schedule": "0 2 30 2 *"}),
     "platform:databases.main.backup.schedule", "bad day-of-month"),
    ("cron_day_of_week_seven", mutate("databases.main.backup", {"schedule": "0 2 * * 7"}),
     "platform:databases.main.backup.schedule", "day of week 0-6"),
    ("cron_quartz_syntax", mutate("databases.main.backup", {"schedule": "0 2 L * *"}),
     "platform:databases.main.backup.schedule", "Kubernetes and crond do not know"),
    ("backup_stale_between_runs", mutate("databases.main.backup", {"schedule": "0 2 * * 0", "maxAgeHours": 26}),
     "platform:databases.main.backup.maxAgeHours", "up to 168 hours between backups"),
    ("edge_host_is_url", mutate("edge.hosts", ["https://shop.dev.localhost"]), "platform:edge.hosts.0",
     "no scheme, port or path"),
    ("edge_host_is_ip", mutate("edge.hosts", ["127.0.0.1"]), "platform:edge.hosts.0", "not an IP address"),
    ("acme_email_not_an_address", mutate("edge.tls", {"mode": "acme", "email": "ops-at-shop.example"}),
     "platform:edge.tls.email", "must have an @-sign"),
    ("alert_email_reserved_domain", mutate("alerting.emailTo", ["oncall@shop.test"]), "platform:alerting.emailTo.0",
     "special-use or reserved name"),
    ("namespace_too_long", mutate("kubernetes.namespace", "shop-" + "x" * 59), "platform:kubernetes.namespace",
     "at most 63 characters"),
    ("namespace_not_a_label", mutate("kubernetes.namespace", "shop.dev"), "platform:kubernetes.namespace",
     "DNS label"),
    ("edge_ports_equal", mutate("edge.httpPort", 30443), "platform:edge.httpPort", "the same as edge.httpsPort"),
    ("path_prefix_relative", mutate("services.api.pathPrefix", "api"), "platform:services.api.pathPrefix",
     "starting with '/'"),
    ("path_prefix_empty", mutate("services.api.pathPrefix", ""), "platform:services.api.pathPrefix",
     "absolute URL path"),
    ("path_prefix_shared", mutate("services.api.pathPrefix", "/"), "platform:services.api.pathPrefix",
     "also services.web.pathPrefix"),
    ("version_only_prefix", mutate("services.api.version", "sha-"), "platform:services.api.version",
     "7 to 40 lowercase hex digits"),
    ("version_cut_short", mutate("services.api.version", "1.4."), "platform:services.api.version", "cut short"),
    ("smoke_host_not_routed", mutate("smokeTest", {"hostHeader": "other.localhost"}),
     "platform:smokeTest.hostHeader", "not one of edge.hosts"),
    ("secret_named_like_schema_key", mutate("databases.main.passwordSecret", "edge"),
     "platform:databases.main.passwordSecret", "is a key of the schema"),
    ("services_given_as_text", mutate("services", "web"), "platform:services", "expected an object"),
    ("postgres_role_reserved", mutate("databases.main.user", "pg_shop"), "platform:databases.main.user", "reserved"),
    ("alertmanager_zero_interval", mutate("alerting.repeatInterval", "0s"), "platform:alerting.repeatInterval",
     "zero interval"),
]


@pytest.mark.parametrize("mutation,key,words", [c[1:] for c in BAD_CONFIG], ids=[c[0] for c in BAD_CONFIG])
def test_rejects_bad_config_naming_file_and_key(mutation, key, words):
    raw = dev()
    mutation(raw)
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, "dev")
    message = str(caught.value)
    assert message.startswith("Pulumi.dev.yaml: invalid configuration")
    assert key in message, message
    assert words in message, message


def test_there_are_at_least_thirty_distinct_bad_config_cases():
    assert len({case[0] for case in BAD_CONFIG}) >= 30


def test_rejects_bad_config_with_what_was_found():
    raw = dev()
    raw["services"]["api"]["port"] = 70000
    with pytest.raises(ConfigError, match="found 70000"):
        parse_platform_config(raw, "dev")


def test_rejects_problems_across_keys_each_at_its_own_key():
    raw = dev()
    raw["edge"]["httpsPort"] = 8443
    raw["promotion"] = {"requireVerified": True}
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, "dev")
    message = str(caught.value)
    assert "(2 problems)" in message
    assert "  - platform:edge.httpsPort: is 8443" in message
    assert "  - platform:promotion.requireVerified: needs promotion.stagingStack" in message


def test_accepts_a_whole_number_where_a_fraction_is_allowed():
    raw = dev()
    raw["smokeTest"] = {"delaySeconds": 2, "timeoutSeconds": 5}
    assert parse_platform_config(raw, "dev").smoke_test.delay_seconds == 2.0


def test_accepts_a_fraction_as_pulumi_config_set_path_stores_it():
    # `pulumi config set --path platform:smokeTest.delaySeconds 0.2` stores "0.2" (integers it stores typed).
    raw = dev()
    raw["smokeTest"] = {"delaySeconds": "0.2"}
    raw["alerting"]["thresholds"] = {"errorRate": "0.02"}
    config = parse_platform_config(raw, "dev")
    assert (config.smoke_test.delay_seconds, config.alerting.thresholds.error_rate) == (0.2, 0.02)


def test_accepts_cron_names_ranges_lists_and_steps():
    raw = dev()
    raw["databases"]["main"]["backup"] = {"schedule": "*/30 1-5 * JAN-DEC mon-fri", "restoreDrillSchedule": "0 4 1,15 * *",
                                          "maxAgeHours": 72}
    assert parse_platform_config(raw, "dev").databases["main"].backup.schedule == "*/30 1-5 * JAN-DEC mon-fri"


def test_accepts_the_restarts_threshold_spelled_as_documented():
    raw = dev()
    raw["alerting"]["thresholds"] = {"restarts15m": 5}
    assert parse_platform_config(raw, "dev").alerting.thresholds.restarts_15m == 5


def test_rejects_every_problem_in_one_message():
    raw = dev()
    raw["services"]["api"]["version"] = "latest"
    raw["services"]["web"]["port"] = 0
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, "dev")
    assert "(2 problems)" in str(caught.value)


def test_rejects_a_secret_given_in_plain_text():
    raw = dev()
    raw["mainDbPassword"] = "hunter2hunter2"
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, "dev")
    assert "platform:mainDbPassword" in str(caught.value)
    assert "pulumi config set --secret platform:mainDbPassword -s dev" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_fails_when_a_referenced_secret_is_not_set(mocks):
    platform = parse_platform_config(dev(), "dev")
    with pytest.raises(ConfigError) as caught:
        run_program(lambda: resolve_secrets(platform, "dev"))
    message = str(caught.value)
    assert "platform:mainDbPassword (wanted by databases.main.passwordSecret)" in message
    assert "platform:sessionSigningKey (wanted by services.api.secrets.SESSION_SIGNING_KEY)" in message


def test_accepts_digest_versions():
    raw = dev()
    raw["services"]["api"]["version"] = "sha256:" + "a" * 64
    assert parse_platform_config(raw, "dev").services["api"].version.startswith("sha256:")


def test_defaults_come_from_the_models():
    config = parse_platform_config(dev(), "dev")
    web = config.services["web"]
    assert (web.health_check.timeout_seconds, web.health_check.retries) == (3, 3)
    assert (web.log_rotation.max_size, web.log_rotation.max_files) == ("10m", 5)
    assert config.databases["main"].backup.schedule == "0 2 * * *"
    assert config.databases["main"].backup.retention_days == 7


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_files_validate(stack):
    config = parse_platform_config(raw_stack_config(stack), stack)
    assert isinstance(config, PlatformConfig)
    assert config.environment == stack
