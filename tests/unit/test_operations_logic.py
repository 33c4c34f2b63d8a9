"""Pure logic behind smoke tests, pre-deploy backups and deployctl (no engine, no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.predeploy import COVERED_ENV, PreDeployBackupArgs, backup_environment, backup_script
from components.smoke import _run_checks
from deployctl.history import HistoryError, find, last_good, releases_from_history
from deployctl.rollout import Analysis, next_weight
from deployctl.workspace import failure_summary
from support import ROOT


def entry(result="succeeded", message="", api="1.0.0", kind="update"):
    return {"kind": kind, "result": result, "message": message, "startTime": "2026-11-23T10:00:00Z",
            "version": 0, "config": {"platform:services": {"value": "", "secret": False,
                                                            "objectValue": {"api": {"version": api}}},
                                      "platform:dbPassword": {"value": "[secret]", "secret": True}}}


def test_history_is_numbered_oldest_first_from_one():
    releases = releases_from_history([entry(api="3"), entry(api="2"), entry(api="1")])
    assert [(r.number, r.versions["api"]) for r in releases] == [(1, "1"), (2, "2"), (3, "3")]


def test_release_config_for_reapply_leaves_secrets_out():
    [release] = releases_from_history([entry()])
    assert "platform:dbPassword" not in release.plain_config()
    assert release.plain_config()["platform:services"]["objectValue"] == {"api": {"version": "1.0.0"}}


def test_last_good_is_the_newest_success_before_the_current_update():
    releases = releases_from_history([entry(result="failed", api="3"), entry(api="2"), entry(api="1")])
    assert last_good(releases, "staging").number == 2
    releases = releases_from_history([entry(api="3"), entry(api="2"), entry(api="1")])
    assert last_good(releases, "staging").number == 2


def test_fails_to_find_a_version_that_does_not_exist():
    with pytest.raises(HistoryError, match="no version 5"):
        find(releases_from_history([entry()]), 5, "staging")


def test_fails_to_roll_back_to_a_failed_update():
    with pytest.raises(HistoryError, match="failed"):
        find(releases_from_history([entry(result="failed")]), 1, "staging")


def test_canary_weights_step_ten_fifty_hundred():
    assert [next_weight(w, [10, 50, 100]) for w in (0, 10, 50)] == [10, 50, 100]


def test_canary_at_full_weight_has_no_next_step():
    with pytest.raises(Exception, match="promote"):
        next_weight(100, [10, 50, 100])


@pytest.mark.parametrize("ok,timeouts,passes", [(95, 0, True), (94, 0, False), (95, 6, False), (100, 5, True)])
def test_analysis_thresholds(ok, timeouts, passes):
    assert Analysis(requests=100, successes=ok, timeouts=timeouts).passes(0.95, 0.05) is passes


def test_pre_deploy_backup_failure_stops_the_update_naming_the_database():
    args = PreDeployBackupArgs(database="main", command=["sh", "-c", "echo dump failed >&2; exit 3"],
                               client_versions={})
    run = subprocess.run(["sh", "-c", backup_script(args)], capture_output=True, text=True)
    assert run.returncode == 3
    assert "dump failed" in run.stderr
    assert "backup of database 'main' before deploy failed (exit 3); the update stops here" in run.stderr


def test_pre_deploy_backup_is_skipped_only_for_a_database_the_rollback_names_as_covered():
    args = PreDeployBackupArgs(database="main", command=["sh", "-c", "echo dumped"], client_versions={})
    def run(covered: str | None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], **({COVERED_ENV: covered} if covered is not None else {})}
        return subprocess.run(["sh", "-c", backup_script(args)], capture_output=True, text=True, env=env)
    assert run(None).stdout == "dumped\n"
    assert run("mainx,other").stdout == "dumped\n"  # names match whole
    skipped = run("audit,main")
    assert skipped.returncode == 0 and "before deploy skipped" in skipped.stdout and "dumped" not in skipped.stdout


def test_pre_deploy_backup_runs_only_when_client_versions_change():
    one = PreDeployBackupArgs(database="main", command=["true"], client_versions={"api": "1", "worker": "1"})
    same = PreDeployBackupArgs(database="main", command=["true"], client_versions={"worker": "1", "api": "1"})
    two = PreDeployBackupArgs(database="main", command=["true"], client_versions={"api": "2", "worker": "1"})
    assert backup_environment(one) == backup_environment(same)
    assert backup_environment(one) != backup_environment(two)


@pytest.fixture
def health_server():
    answers = {"/ok": (200, "1.4.2"), "/broken": (500, "1.7.0"), "/stale": (200, "1.4.1"), **REGISTRY}
    # /routing: the edge's instant 502 for the first 5 requests (no route to the new pods yet), then the service.
    routing = iter([(502, "")] * 5)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, body = answers.get(self.path, (404, ""))
            if self.path == "/routing":
                status, body = next(routing, (200, "1.4.2"))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


# The registry side of a digest-pinned release: a manifest and its config blob, labelled or not.
LABELLED, UNLABELLED = "sha256:" + "1" * 64, "sha256:" + "2" * 64
REGISTRY = {
    f"/v2/shop/api/manifests/{LABELLED}": (200, json.dumps({"config": {"digest": "sha256:" + "c" * 64}})),
    "/v2/shop/api/blobs/sha256:" + "c" * 64: (200, json.dumps(
        {"config": {"Labels": {"org.opencontainers.image.version": "1.4.2"}}})),
    f"/v2/shop/api/manifests/{UNLABELLED}": (200, json.dumps({"config": {"digest": "sha256:" + "d" * 64}})),
    "/v2/shop/api/blobs/sha256:" + "d" * 64: (200, json.dumps({"config": {"Labels": {}}})),
}


def smoke_props(url, version="1.4.2", image="", settle=0):
    return {"checks": [{"service": "api", "url": url, "version": version, "image": image}], "versions": {"api": version},
            "hostHeader": None, "verifyTls": False, "attempts": 3, "delaySeconds": 0, "timeoutSeconds": 3,
            "checkVersion": True, "settleSeconds": settle}


def test_smoke_test_waits_out_a_route_not_there_yet_within_its_settle_window(health_server):
    # Five 502s, more than the 3 attempts: they cost none inside the settle window.
    outs = _run_checks(smoke_props(health_server + "/routing", settle=30))
    assert outs["report"][0]["ok"] is True and outs["report"][0]["attempts"] == 6


def test_smoke_test_counts_every_502_once_its_settle_window_is_over(health_server):
    with pytest.raises(Exception, match=r"HTTP 502 \(after 3 attempts\)"):
        _run_checks(smoke_props(health_server + "/routing", settle=0))


def test_smoke_test_settle_window_never_excuses_a_server_error(health_server):
    # Three tries in all: a 500 is the service's answer, not a route missing.
    with pytest.raises(Exception, match=r"HTTP 500 \(after 3 attempts\)"):
        _run_checks(smoke_props(health_server + "/broken", settle=30))


def test_smoke_test_passes_and_verifies_the_versions(health_server):
    outs = _run_checks(smoke_props(health_server + "/ok"))
    assert outs["verified"] == {"api": "1.4.2"}
    assert outs["report"][0]["ok"] is True


def test_smoke_test_fails_on_http_500_after_its_retries(health_server):
    with pytest.raises(Exception, match=r"smoke test failed: api .*/broken: HTTP 500 \(after 3 attempts\)"):
        _run_checks(smoke_props(health_server + "/broken"))


def test_smoke_test_fails_when_the_old_version_still_answers(health_server):
    with pytest.raises(Exception, match="serves version '1.4.1', expected '1.4.2'"):
        _run_checks(smoke_props(health_server + "/stale"))


def test_a_digest_pinned_release_must_report_its_images_version_label(health_server):
    image = health_server.removeprefix("http://") + "/shop/api"
    outs = _run_checks(smoke_props(health_server + "/ok", LABELLED, image))
    assert outs["verified"] == {"api": LABELLED}


def test_a_digest_pinned_release_serving_another_version_fails_the_smoke_test(health_server):
    image = health_server.removeprefix("http://") + "/shop/api"
    with pytest.raises(Exception, match=rf"serves version '1.4.1', expected '1.4.2' \(the version label of {LABELLED}\)"):
        _run_checks(smoke_props(health_server + "/stale", LABELLED, image))


def test_a_digest_pinned_image_without_a_version_label_fails_naming_the_label(health_server):
    image = health_server.removeprefix("http://") + "/shop/api"
    with pytest.raises(Exception, match="has no org.opencontainers.image.version label"):
        _run_checks(smoke_props(health_server + "/ok", UNLABELLED, image))


def test_smoke_test_passes_when_the_database_check_command_succeeds(health_server):
    props = {**smoke_props(health_server + "/ok"), "commands": [{"name": "database main", "command": ["true"]}]}
    outs = _run_checks(props)
    assert {"check": "database main", "ok": True} == {k: outs["report"][-1][k] for k in ("check", "ok")}


def test_smoke_test_fails_when_the_database_refuses_connections(health_server):
    refused = ["sh", "-c", "echo 'psql: error: connection refused' >&2; exit 2"]
    props = {**smoke_props(health_server + "/ok"), "commands": [{"name": "database main", "command": refused}]}
    with pytest.raises(Exception, match="database main: psql: error: connection refused"):
        _run_checks(props)


def test_smoke_test_fails_when_nothing_listens():
    with pytest.raises(Exception, match="smoke test failed"):
        _run_checks(smoke_props("http://127.0.0.1:9/healthz"))


def test_local_ca_issues_a_certificate_for_every_host_signed_by_its_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from components.local_ca import issue

    issued = issue(["shop.dev.localhost", "api.dev.localhost"], 30)
    cert = x509.load_pem_x509_certificate(issued["cert"].encode())
    ca = x509.load_pem_x509_certificate(issued["ca_cert"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["shop.dev.localhost", "api.dev.localhost"]
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def test_local_ca_renewal_keeps_the_ca_and_issues_a_new_certificate():
    from components.local_ca import _IssuerProvider, issue

    first = issue(["shop.dev.localhost"], 30)
    renewed = _IssuerProvider().update("id", first, {"hosts": ["shop.dev.localhost"], "renew_before_days": 30}).outs
    assert renewed["ca_cert"] == first["ca_cert"] and renewed["cert"] != first["cert"]


def test_local_ca_renews_within_the_renew_before_window_and_on_host_changes():
    import datetime as dt

    from components.local_ca import _IssuerProvider

    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10)).isoformat()
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=80)).isoformat()
    provider, news = _IssuerProvider(), {"hosts": ["a.local"], "renew_before_days": 30}
    assert provider.diff("id", {"hosts": ["a.local"], "not_after": soon}, news).changes is True
    assert provider.diff("id", {"hosts": ["a.local"], "not_after": later}, news).changes is False
    assert provider.diff("id", {"hosts": ["b.local"], "not_after": later}, news).changes is True


def test_smoke_test_remembers_every_version_it_ever_verified(health_server):
    outs = _run_checks(smoke_props(health_server + "/ok"), history={"api": ["1.4.0", "1.4.2", "1.4.1"]})
    assert outs["verified_history"]["api"] == ["1.4.0", "1.4.1", "1.4.2"]


def run_smoke_command(props, previous_stdout=""):
    """`python -m components.smoke` as pulumi-command runs it: checks on stdin, last output in env."""
    env = {**os.environ, "PULUMI_COMMAND_STDOUT": previous_stdout}
    return subprocess.run([sys.executable, "-m", "components.smoke"], input=json.dumps(props), env=env,
                          capture_output=True, text=True, cwd=ROOT)


def test_smoke_command_carries_the_verified_history_of_its_previous_run_forward(health_server):
    previous = json.dumps({"verified_history": {"api": ["1.3.0"]}})
    run = run_smoke_command(smoke_props(health_server + "/ok"), previous)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["verified_history"] == {"api": ["1.3.0", "1.4.2"]}


def test_smoke_command_exits_non_zero_naming_the_failed_check(health_server):
    run = run_smoke_command(smoke_props(health_server + "/broken"))
    assert run.returncode == 1 and run.stdout == ""
    assert "smoke test failed: api" in run.stderr and "HTTP 500" in run.stderr


FAILED_UP = """ code: 255
 stdout: Updating (staging):
 ~  pulumi-python:dynamic:Resource platform-smoke-run updating (14s) error: smoke test failed: api
Diagnostics:
  pulumi-python:dynamic:Resource (platform-smoke-run):
    error: Exception calling application: smoke test failed: api https://127.0.0.1:31443/api/healthz: serves version '1.6.0', expected '1.7.1-mislabeled' (after 8 attempts)

  pulumi:pulumi:Stack (platform-staging):
    error: update failed

Outputs:
    versions: {api: "1.4.2"}
Resources:
    2 errored
Duration: 26s
 stderr:
"""

REFUSED_PREVIEW = """ stdout: Previewing update (dev):
Policy Violations:
    [mandatory]  platform-guardrails v0.1.0  disallow-latest-tag (kubernetes:apps/v1:Deployment: api)
    services.api runs '127.0.0.1:5000/shop/api:latest', a moving tag
Resources:
    46 unchanged
"""


def test_failure_summary_names_the_failing_check_not_the_outputs_diff():
    summary = failure_summary(FAILED_UP)
    assert "expected '1.7.1-mislabeled'" in summary
    assert "update failed" not in summary and "versions" not in summary


def test_failure_summary_lists_policy_violations():
    assert failure_summary(REFUSED_PREVIEW).startswith("[mandatory]  platform-guardrails v0.1.0  disallow-latest-tag")


def test_failure_summary_falls_back_to_the_last_lines():
    assert failure_summary("a\nb\nconnection refused\n", tail_lines=1) == "connection refused"
