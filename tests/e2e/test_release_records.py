"""Release records, signed evidence, notifications and preflight on the real engine.

Stacks render their manifests; smoke tests and canary traffic go to the fake edge
(fake_edge.py); image digests come from the local registry at 127.0.0.1:5000, which the test
asks itself (GET of the manifest, whose sha256 must be the digest the record holds). A local
webhook and an SMTP sink (receivers.py) receive the notifications."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from engine import Project
from receivers import SmtpSink, Webhook

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
MANIFEST_TYPES = ("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.list.v2+json, "
                  "application/vnd.docker.distribution.manifest.v2+json")
DING_SECRET = "SECe2e-dingtalk-signing-secret"


@pytest.fixture
def receivers():
    hook, smtp = Webhook(), SmtpSink()
    yield hook, smtp
    hook.close()
    smtp.close()


def notified(project: Project, stack: str, hook: Webhook, smtp: SmtpSink) -> None:
    """The stack's notification channels; their URLs and signing secret set with --secret."""
    secrets = {"notifyHookUrl": hook.url(f"/{stack}/hook"), "notifySlackUrl": hook.url(f"/{stack}/slack"),
               "notifyDingUrl": hook.url(f"/{stack}/ding") + "?access_token=e2e", "notifyDingSign": DING_SECRET}
    project.pulumi("config", "set-all", *[arg for key, value in secrets.items()
                                          for arg in ("--secret", f"platform:{key}={value}")], "-s", stack)
    channels = {"webhook": {"urlSecret": "notifyHookUrl"}, "slack": {"urlSecret": "notifySlackUrl"},
                "dingtalk": {"urlSecret": "notifyDingUrl", "signSecret": "notifyDingSign"},
                "email": {"to": ["ops@example.com"], "emailFrom": "deployctl@example.com", "smtpHost": "127.0.0.1",
                          "smtpPort": smtp.port, "starttls": False}}
    entry = {"platform:notifications": {"value": json.dumps(channels), "objectValue": channels, "secret": False}}
    project.pulumi("config", "set-all", "--json", json.dumps(entry), "-s", stack)


@pytest.fixture
def staging(staging, tmp_path):
    """The rendering staging stack at api 1.4.2 (update 1); evidence signed with the test's own key."""
    staging.env["DEPLOYCTL_SIGNING_DIR"] = str(tmp_path / "keys")
    staging.pulumi("up", "--yes", "-s", "staging", "--message", "api 1.4.2")
    return staging


@pytest.fixture
def told(staging, receivers):
    """Staging notifying the local receivers (set after update 1: today's settings are what count)."""
    notified(staging, "staging", *receivers)
    return staging


def records(project: Project, stack: str) -> list[dict]:
    directory = Path(project.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".deployctl" / "records" / stack
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def registry_digest(image: str, version: str) -> str:
    """sha256 of the manifest the registry serves: the digest a pull of image:version resolves to."""
    host, _, repository = image.partition("/")
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{version}",
                                     headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(request, timeout=30) as response:
        return "sha256:" + hashlib.sha256(response.read()).hexdigest()


def stack_file_images(project: Project, stack: str) -> dict[str, tuple[str, str]]:
    config = yaml.safe_load((project.dir / f"Pulumi.{stack}.yaml").read_text())["config"]
    services, edge = config["platform:services"], config["platform:edge"]
    images = {name: (spec["image"], spec["version"]) for name, spec in services.items()}
    images["edge"] = (edge["image"], edge["version"])
    return images


def assert_digests_match_the_registry(record: dict) -> None:
    assert record["images"], "the record lists no images"
    for name, entry in record["images"].items():
        assert entry["digest"] == registry_digest(entry["image"], entry["version"]), name
    pinned = {name: f"{entry['image']}@{entry['digest']}" for name, entry in sorted(record["images"].items())}
    assert record["version_set_sha256"] == hashlib.sha256(
        json.dumps(pinned, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def hook_bodies(hook: Webhook, path: str) -> list[dict]:
    return hook.bodies(path)


def assert_notified(hook: Webhook, smtp: SmtpSink, stack: str, count: int, event: str, facts: dict) -> None:
    bodies = hook_bodies(hook, f"/{stack}/hook")
    assert len(bodies) == count, bodies
    body = bodies[-1]
    assert body["event"] == event and body["stack"] == stack
    for key, value in facts.items():
        assert body[key] == value, key
    slack = hook_bodies(hook, f"/{stack}/slack")[-1]["text"]
    assert facts["correlationId"] in slack and facts["actor"] in slack
    ding = [r for r in hook.requests if r.path == f"/{stack}/ding"][-1]
    import base64, hmac  # noqa: E401 - DingTalk's own check, written out here
    expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ding.query['timestamp']}\n{DING_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert ding.query["sign"] == expected
    mails = [m for m in smtp.wait_for(1) if m["X-Correlation-Id"] == facts["correlationId"]]
    assert mails, "no e-mail with the correlation id"
    text = mails[-1].get_payload(decode=True).decode()
    assert f"actor: {facts['actor']}" in text and stack in mails[-1]["Subject"]


def test_a_deploy_leaves_a_full_record_in_the_stack_and_tells_every_channel(told, receivers):
    staging, (hook, smtp) = told, receivers
    staging.set_config("staging", "services.api.version", "1.5.0")

    staging.deployctl("deploy", "staging", "--message", "api 1.5.0", "--actor", "alice", "--reason", "ship 1.5.0",
                      "--correlation-id", "e2e-deploy-1")

    [record] = records(staging, "staging")
    assert (record["operation"], record["stack"], record["outcome"]) == ("deploy", "staging", "succeeded")
    assert (record["actor"], record["reason"], record["correlation_id"]) == ("alice", "ship 1.5.0", "e2e-deploy-1")
    assert record["versions_before"]["api"] == "1.4.2" and record["versions_after"]["api"] == "1.5.0"
    assert record["versions_attempted"] == record["versions_after"]
    assert {name: (entry["image"], entry["version"]) for name, entry in record["images"].items()
            if name in stack_file_images(staging, "staging")} == stack_file_images(staging, "staging")
    assert_digests_match_the_registry(record)
    assert [c["name"] for c in record["preflight"]] == ["target", "disk", "registry"]
    assert all(c["ok"] for c in record["preflight"])
    assert record["policy"] == {"preview": "passed", "update": "passed"}
    assert record["smoke"]["result"] == "passed" and record["smoke"]["verified"]["api"] == "1.5.0"
    assert set(record["durations"]) == {"preflight", "preview", "update"} and record["duration_seconds"] > 0
    assert record["updates"] == [2] and record["error"] is None
    assert {n["channel"]: n["ok"] for n in record["notifications"]} == {
        "webhook": True, "slack": True, "dingtalk": True, "email": True}
    # Kept with the stack: Pulumi's own history carries the correlation id and the record's file.
    environment = staging.history("staging")[0]["environment"]
    assert environment["ci.system"] == "deployctl" and environment["ci.build.id"] == "e2e-deploy-1"
    assert environment["ci.build.type"] == "deploy" and environment["ci.build.url"].endswith(".json")
    newest = json.loads(staging.deployctl("history", "staging", "--json").stdout)[0]
    assert newest["record"]["actor"] == "alice" and newest["record"]["digests"]["api"] == record["images"]["api"]["digest"]
    staging.env["COLUMNS"] = "300"  # rich lays the table out for the terminal width it is told
    table = staging.deployctl("history", "staging").stdout
    assert "alice" in table and "ship 1.5.0" in table
    verified = staging.deployctl("verify", environment["ci.build.url"].removeprefix("file://"), check=False)
    assert verified.code == 0, verified.output
    assert_notified(hook, smtp, "staging", 1, "success", {
        "actor": "alice", "reason": "ship 1.5.0", "correlationId": "e2e-deploy-1",
        "versionsBefore": record["versions_before"], "versionsAfter": record["versions_after"]})


def test_a_failed_deploy_and_its_automatic_rollback_are_recorded_and_notified(told, receivers):
    staging, (hook, smtp) = told, receivers
    staging.set_config("staging", "services.api.version", "1.7.0-broken")

    result = staging.deployctl("deploy", "staging", "--actor", "bob", "--reason", "try 1.7.0",
                               "--correlation-id", "e2e-failed-1", check=False)

    assert result.code != 0 and "rolled back to version 1" in result.output
    [record] = records(staging, "staging")
    assert record["outcome"] == "rolled-back" and record["rolled_back_to"] == 1
    assert "components.smoke" in record["error"] and record["smoke"]["result"] == "failed"
    assert record["versions_attempted"]["api"] == "1.7.0-broken"
    assert record["versions_before"]["api"] == record["versions_after"]["api"] == "1.4.2"
    assert record["updates"] == [2, 3] and set(record["durations"]) >= {"update", "rollback"}
    assert_digests_match_the_registry(record)
    history = json.loads(staging.deployctl("history", "staging", "--json").stdout)
    assert [h["record"]["correlationId"] for h in history[:2]] == ["e2e-failed-1", "e2e-failed-1"]
    assert_notified(hook, smtp, "staging", 1, "rollback", {
        "actor": "bob", "reason": "try 1.7.0", "correlationId": "e2e-failed-1", "outcome": "rolled-back",
        "events": ["failure", "rollback"], "rolledBackTo": 1})


def test_a_promotion_is_recorded_and_notified_on_the_target(staging, receivers):
    hook, smtp = receivers
    staging.init_stack("prod", SECRETS)
    staging.render_only("prod")
    notified(staging, "prod", hook, smtp)

    staging.deployctl("promote", "staging", "prod", "--actor", "carol", "--correlation-id", "e2e-promote-1")

    [record] = records(staging, "prod")
    assert (record["operation"], record["outcome"], record["actor"]) == ("promote", "succeeded", "carol")
    assert record["details"]["source"] == "staging" and record["versions_after"]["api"] == "1.4.2"
    assert record["versions_before"] == {} and record["updates"] == [1]
    assert_digests_match_the_registry(record)
    assert_notified(hook, smtp, "prod", 1, "promotion", {
        "actor": "carol", "reason": None, "correlationId": "e2e-promote-1", "operation": "promote",
        "versionsAfter": record["versions_after"]})


def test_rollback_needs_a_reason_and_leaves_signed_evidence_that_verify_checks(staging):
    staging.set_config("staging", "services.api.version", "1.5.0")
    staging.pulumi("up", "--yes", "-s", "staging", "--message", "api 1.5.0")
    refused = staging.deployctl("rollback", "staging", "--last-good", check=False)
    assert refused.code != 0 and "needs --reason" in refused.output

    staging.deployctl("rollback", "staging", "--last-good", "--reason", "1.5.0 slow", "--correlation-id", "e2e-rb")

    [record] = records(staging, "staging")
    assert (record["operation"], record["outcome"], record["rolled_back_to"]) == ("rollback", "succeeded", 1)
    assert record["versions_before"]["api"] == "1.5.0" and record["versions_after"]["api"] == "1.4.2"
    evidence = Path(record["evidence"])
    document = json.loads(evidence.read_text())
    assert document["correlation_id"] == "e2e-rb" and document["reason"] == "1.5.0 slow"
    assert staging.deployctl("verify", str(evidence), check=False).code == 0
    evidence.write_text(evidence.read_text().replace('"to_version": 1', '"to_version": 2'))
    tampered = staging.deployctl("verify", str(evidence), check=False)
    assert tampered.code != 0 and "signature check failed" in tampered.output


def test_canary_steps_abort_and_promote_each_leave_a_record(staging):
    staging.set_config("staging", "services.api.canary.version", "1.5.0")
    staging.set_config("staging", "services.api.canary.weight", 10)
    staging.pulumi("up", "--yes", "-s", "staging")

    staging.deployctl("rollout", "staging", "api", "--step", "--correlation-id", "e2e-canary")
    staging.deployctl("rollout", "staging", "api", "--abort", "--correlation-id", "e2e-canary")
    staging.deployctl("rollout", "staging", "api", "--promote", "--correlation-id", "e2e-canary")

    step, abort, promote = records(staging, "staging")
    assert [r["operation"] for r in (step, abort, promote)] == ["rollout-step", "rollout-abort", "rollout-promote"]
    assert all(r["outcome"] == "succeeded" and r["correlation_id"] == "e2e-canary" for r in (step, abort, promote))
    assert step["analysis"]["passed"] is True and step["analysis"]["requests"] > 0
    assert step["analysis"]["min_success_rate"] == 0.95 and step["details"]["weight_after"] == 50
    assert abort["details"]["weight_after"] == 0 and promote["versions_after"]["api"] == "1.5.0"
    assert_digests_match_the_registry(step)
    assert step["images"]["api-canary"]["version"] == "1.5.0"


def test_rollback_drill_leaves_a_record_linked_to_its_signed_evidence(staging):
    staging.set_config("staging", "services.api.version", "1.5.0")
    staging.pulumi("up", "--yes", "-s", "staging", "--message", "api 1.5.0")

    staging.deployctl("drill", "rollback", "staging", "--actor", "dave")

    [record] = records(staging, "staging")
    assert (record["operation"], record["outcome"], record["actor"]) == ("drill-rollback", "succeeded", "dave")
    assert record["updates"] == [3, 4] and record["versions_after"]["api"] == "1.5.0"
    assert set(record["durations"]) >= {"rollback", "roll-forward"}
    assert_digests_match_the_registry(record)
    assert staging.deployctl("verify", record["evidence"], check=False).code == 0


def test_a_deploy_is_refused_before_anything_changes_when_the_disk_check_fails(staging):
    staging.set_config("staging", "preflight.minFreeDiskPercent", 100)
    staging.set_config("staging", "services.api.version", "1.5.0")
    stack_file = (staging.dir / "Pulumi.staging.yaml").read_bytes()
    history = staging.history("staging")

    result = staging.deployctl("deploy", "staging", check=False)

    assert result.code != 0 and "preflight check 'disk' failed" in result.output
    assert "minFreeDiskPercent" in result.output and "nothing changed" in result.output
    assert staging.history("staging") == history and (staging.dir / "Pulumi.staging.yaml").read_bytes() == stack_file
    [record] = records(staging, "staging")
    assert record["outcome"] == "refused" and record["preflight"][-1]["name"] == "disk"


def test_a_deploy_of_a_version_missing_from_the_registry_is_refused_naming_the_image(staging):
    staging.set_config("staging", "services.api.version", "9.9.9")
    history = staging.history("staging")

    result = staging.deployctl("deploy", "staging", check=False)

    assert result.code != 0 and "preflight check 'registry' failed" in result.output
    assert "127.0.0.1:5000/shop/api:9.9.9: not in the registry" in result.output
    assert staging.history("staging") == history
