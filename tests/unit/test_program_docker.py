"""The whole program on the Docker target, under mocks: what it asks the Docker provider and
pulumi-command for. The real engine runs it in tests/e2e/test_docker_host.py."""

from __future__ import annotations

import json

import pytest
import yaml

from components.config import PlatformConfig
from components.edge import DYNAMIC_PATH, STATIC_PATH
from support import DEV_SECRETS, deploy_stack, is_secret, on_docker, raw_stack_config, with_local_ca

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
COMMAND = "command:local:Command"


def deploy(mocks, change=None):
    def docker_and(raw):
        on_docker(raw)
        if change:
            change(raw)

    return deploy_stack("staging", docker_and)


def labels(container) -> dict[str, str]:
    return {entry["label"]: entry["value"] for entry in container.get("labels")}


def container(mocks, workload: str, replica: int | None = None):
    """A workload's container, in its release slot when it has one: `api` replica 1 is
    `api-<slot>-1`, whatever the slot is."""
    suffix = f"-{replica}" if replica else ""
    found = [c for c in mocks.of_type(CONTAINER)
             if c.name in (workload + suffix, f"{workload}-{labels(c).get('deploy.platform/slot')}{suffix}")]
    assert len(found) == 1, f"{workload}{suffix}: {[c.name for c in mocks.of_type(CONTAINER)]}"
    return found[0]


def routes(mocks) -> dict:
    switch = json.loads(mocks.named(COMMAND, "edge-routes").inputs["stdin"])
    return yaml.safe_load(switch["routes"])


def uploads(container) -> dict[str, str]:
    # Under mocks, values computed by dynamic providers (the local CA's certificate) are absent.
    return {entry["file"]: entry.get("content") for entry in container.get("uploads") or []}


def test_container_image_is_repository_plus_version(mocks):
    deploy(mocks)
    assert container(mocks, "web").get("image") == "127.0.0.1:5000/shop/web:1.4.2"


def test_replicas_become_numbered_containers_of_one_slot(mocks):
    deploy(mocks)
    slot = labels(container(mocks, "api", 1))["deploy.platform/slot"]
    assert {c.get("name") for c in mocks.of_type(CONTAINER)} >= {f"staging-api-{slot}-1", f"staging-api-{slot}-2"}


def test_a_new_version_is_a_new_slot_beside_the_old_one_not_a_replacement(mocks):
    deploy(mocks)
    first = container(mocks, "api", 1).name
    mocks.resources.clear()
    deploy(mocks, change=lambda raw: raw["services"]["api"].update(version="1.5.0"))
    second = container(mocks, "api", 1).name
    assert first.startswith("api-1-4-2-") and second.startswith("api-1-5-0-")


def test_any_change_of_a_containers_definition_is_a_new_slot(mocks):
    deploy(mocks)
    first = container(mocks, "web").name
    mocks.resources.clear()
    deploy(mocks, change=lambda raw: raw["services"]["web"].setdefault("env", {}).update(FEATURE="on"))
    assert container(mocks, "web").name != first


def test_the_edge_and_databases_keep_one_name(mocks):
    deploy(mocks)
    assert container(mocks, "edge").name == "edge" and container(mocks, "postgres-main").name == "postgres-main"


def test_prometheus_keeps_its_series_on_a_named_volume_and_one_name(mocks):
    # Its scrape config names the versions, so each release replaces it: in place, on its volume.
    deploy(mocks)
    prometheus = container(mocks, "prometheus")
    assert prometheus.name == "prometheus"
    assert [volume["containerPath"] for volume in prometheus.get("volumes")] == ["/prometheus"]


def test_prometheus_publishes_no_port_by_default(mocks):
    deploy(mocks)
    assert not container(mocks, "prometheus").get("ports")


def test_a_prometheus_host_port_publishes_it_on_loopback_for_the_canary_analysis(mocks):
    deploy(mocks, lambda raw: raw.setdefault("monitoring", {}).update(prometheusHostPort=19090))
    [port] = container(mocks, "prometheus").get("ports")
    assert (port["internal"], port["external"], port["ip"]) == (9090, 19090, "127.0.0.1")


def test_a_prometheus_host_port_the_edge_publishes_is_refused_naming_the_key():
    raw = raw_stack_config("staging")
    on_docker(raw)
    raw.setdefault("monitoring", {})["prometheusHostPort"] = raw["edge"]["httpsPort"]
    with pytest.raises(ValueError, match=r"monitoring\.prometheusHostPort.*a port the edge publishes"):
        PlatformConfig.model_validate(raw)


def test_healthcheck_probes_the_http_path_bounded_by_timeout_not_wget_T(mocks):
    deploy(mocks)
    check = container(mocks, "web").get("healthcheck")
    assert check["tests"][:3] == ["CMD", "sh", "-c"]
    assert "timeout 3 wget -q -O /dev/null http://127.0.0.1:8080/healthz" in check["tests"][3]
    assert "-T" not in check["tests"][3]
    assert (check["timeout"], check["retries"]) == ("3s", 3)


def test_a_readiness_gate_waits_for_every_replica_of_the_new_slot(mocks):
    deploy(mocks)
    api = container(mocks, "api", 1)
    slot = labels(api)["deploy.platform/slot"]
    gate = json.loads(mocks.named(COMMAND, f"api-{slot}-ready").inputs["stdin"])
    assert gate["containers"] == [f"staging-api-{slot}-1", f"staging-api-{slot}-2"]
    assert gate["interval_seconds"] == 1 and gate["deadline_seconds"] == 30
    assert gate["probe"][:2] == ["sh", "-c"] and "http://127.0.0.1:8080/healthz" in gate["probe"][2]
    assert api.get("wait") is False  # the gate decides, from the first failing probe


def test_edge_routes_name_the_slot_containers_and_switch_inside_the_running_edge(mocks):
    deploy(mocks)
    slot = labels(container(mocks, "api", 1))["deploy.platform/slot"]
    switch = json.loads(mocks.named(COMMAND, "edge-routes").inputs["stdin"])
    assert switch["edge"] == "staging-edge" and switch["path"] == DYNAMIC_PATH
    assert switch["servers"]["api-stable"] == [f"http://staging-api-{slot}-1:8080", f"http://staging-api-{slot}-2:8080"]
    assert DYNAMIC_PATH not in uploads(container(mocks, "edge"))  # a route change never recreates the edge


def test_logs_rotate_by_size_and_count(mocks):
    deploy(mocks)
    web = container(mocks, "web")
    assert web.get("logDriver") == "json-file"
    assert web.get("logOpts") == {"max-size": "10m", "max-file": "5"}


def test_limits_become_memory_and_cpus(mocks):
    deploy(mocks)
    api = container(mocks, "api", 1)
    assert (api.get("memory"), api.get("memoryReservation"), api.get("cpus")) == (512, 128, "1.0")
    assert api.get("memorySwap") == 512  # no swap, and what the engine reports back


def test_cpus_are_spelled_as_the_engine_reports_them_so_an_unchanged_stack_has_no_diff(mocks):
    deploy(mocks)
    assert container(mocks, "web").get("cpus") == "0.5" and container(mocks, "api", 1).get("cpus") == "1.0"


def test_restart_policy_defaults_to_unless_stopped(mocks):
    deploy(mocks)
    assert container(mocks, "web").get("restart") == "unless-stopped"


def test_restart_policy_comes_from_config(mocks):
    deploy(mocks, lambda raw: raw["services"]["web"].update(restartPolicy="on-failure"))
    assert container(mocks, "web").get("restart") == "on-failure"
    assert container(mocks, "api", 1).get("restart") == "unless-stopped"


def test_database_joins_only_the_internal_network(mocks):
    deploy(mocks)
    backend = mocks.named(NETWORK, "backend")
    assert backend.get("internal") is True
    assert mocks.named(NETWORK, "frontend").get("internal") in (None, False)
    networks = container(mocks, "postgres-main").get("networksAdvanced")
    assert [n["name"] for n in networks] == ["staging-backend"]


def test_database_clients_join_the_backend_and_the_web_tier_does_not(mocks):
    deploy(mocks)
    api_networks = {n["name"] for n in container(mocks, "api", 1).get("networksAdvanced")}
    web_networks = {n["name"] for n in container(mocks, "web").get("networksAdvanced")}
    assert api_networks == {"staging-frontend", "staging-backend"}
    assert web_networks == {"staging-frontend"}


def test_secrets_reach_containers_as_secret_files_not_environment(mocks):
    deploy(mocks)
    api = container(mocks, "api", 1)
    assert "SESSION_SIGNING_KEY_FILE=/run/secrets/SESSION_SIGNING_KEY" in api.get("envs")
    raw_uploads = api.inputs["uploads"]
    # Either the whole list or the one entry is marked secret; never a plain value.
    assert is_secret(raw_uploads) or is_secret(
        next(u for u in raw_uploads if u["file"] == "/run/secrets/SESSION_SIGNING_KEY")["content"])
    assert not any(DEV_SECRETS["sessionSigningKey"] in env for env in api.get("envs"))


def test_postgres_reads_its_password_from_a_file(mocks):
    deploy(mocks)
    postgres = container(mocks, "postgres-main")
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD" in postgres.get("envs")
    assert uploads(postgres)["/run/secrets/POSTGRES_PASSWORD"] == DEV_SECRETS["mainDbPassword"]


def test_only_the_edge_publishes_ports_on_loopback(mocks):
    deploy(mocks)
    published = {c.name: c.get("ports") for c in mocks.of_type(CONTAINER) if c.get("ports")}
    assert list(published) == ["edge"]  # so only the edge is replaced in place; every other workload has slots
    assert {(p["internal"], p["external"], p["ip"]) for p in published["edge"]} == {
        (80, 31080, "127.0.0.1"), (443, 31443, "127.0.0.1")}


def test_edge_carries_its_traefik_configuration_and_tls_label(mocks):
    deploy(mocks)
    edge = container(mocks, "edge")
    files = uploads(edge)
    static = yaml.safe_load(files[STATIC_PATH])
    assert static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]["to"] == ":31443"  # the published port
    assert static["providers"]["file"] == {"directory": "/etc/traefik/dynamic", "watch": True}
    assert labels(edge)["deploy.platform/tls"] == "enabled"


def test_canary_weight_splits_edge_traffic(mocks):
    deploy(mocks, change=lambda raw: raw["services"]["api"].update(canary={"version": "1.5.0", "weight": 10}))
    dynamic = routes(mocks)
    assert dynamic["http"]["services"]["api"]["weighted"]["services"] == [
        {"name": "api-stable", "weight": 90}, {"name": "api-canary", "weight": 10}]
    assert labels(container(mocks, "api-canary"))["app.kubernetes.io/version"] == "1.5.0"


def test_backup_job_runs_crond_with_the_schedule_and_shares_the_backup_volume(mocks):
    deploy(mocks)
    backup = mocks.named(CONTAINER, "backup-main")
    assert backup.get("entrypoints")[0] == "crond"
    assert uploads(backup)["/etc/crontabs/root"] == "0 2 * * * sh /etc/platform/job.sh > /proc/1/fd/1 2>&1\n"
    assert "pg_dump" in uploads(backup)["/etc/platform/job.sh"]
    assert labels(backup)["deploy.platform/database"] == "postgres-main"
    drill = mocks.named(CONTAINER, "restore-drill-main")
    assert backup.get("volumes")[0]["volumeName"] == drill.get("volumes")[0]["volumeName"]


def test_no_container_is_privileged(mocks):
    deploy(mocks)
    assert all(not c.get("privileged") for c in mocks.of_type(CONTAINER))


def test_edge_serves_a_certificate_from_the_local_ca_without_acme(mocks):
    deploy(mocks, with_local_ca)
    edge = container(mocks, "edge")
    assert {"/etc/traefik/certs/tls.crt", "/etc/traefik/certs/tls.key"} <= set(uploads(edge))
    dynamic = routes(mocks)
    assert dynamic["tls"]["certificates"] == [{"certFile": "/etc/traefik/certs/tls.crt",
                                               "keyFile": "/etc/traefik/certs/tls.key"}]
    assert mocks.named("pulumi-python:dynamic:Resource", "local-ca-issued").inputs["hosts"] == [
        "shop.staging.localhost"]


def test_acme_mode_leaves_certificates_to_traefik(mocks):
    deploy(mocks, change=lambda raw: raw["edge"].update(tls={"mode": "acme", "email": "ops@shop.example"}))
    static = yaml.safe_load(uploads(container(mocks, "edge"))[STATIC_PATH])
    assert static["certificatesResolvers"]["acme"]["acme"]["email"] == "ops@shop.example"
    assert not [r for r in mocks.of_type("pulumi-python:dynamic:Resource") if r.name == "local-ca-issued"]


def test_the_edge_health_checks_each_container_it_routes_to(mocks):
    # Containers have no balancer of their own in front of them: the edge stops sending to one
    # that fails its health path.
    deploy(mocks)
    api = routes(mocks)["http"]["services"]["api-stable"]["loadBalancer"]
    assert api["healthCheck"]["path"] == "/healthz"
