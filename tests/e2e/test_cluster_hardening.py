"""Hardened workloads (issue 17, docs/security.md): kube-score on the rendered prod manifests, and
on the real local cluster, hardened pods that run, and a database Service that resolves only to
the database while a backup job runs."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from cluster import deploy_to_cluster
from engine import ROOT, Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
NAMESPACE = "e2e-hardening"
SECURITY_DOC = ROOT / "docs" / "security.md"

# kube-score checks of the categories issue 17 names: security context, seccomp, network policy, probes.
CATEGORIES = {
    "security context": ("container-security-context-user-group-id", "container-security-context-privileged",
                         "container-security-context-readonlyrootfilesystem"),
    "seccomp": ("container-seccomp-profile",),
    "network policy": ("pod-networkpolicy", "networkpolicy-targets-pod"),
    "probes": ("pod-probes", "pod-probes-identical"),
}
CHECKED = {check for checks in CATEGORIES.values() for check in checks}
CRITICAL = 1  # kube-score's grades: 1 critical, 5 warning, 7 almost OK, 10 OK


# --- kube-score on the rendered prod manifests (the real engine, no cluster) ----------------------

@pytest.fixture(scope="module")
def kube_score() -> str:
    """The kube-score binary devenv/toolchain/kube-score.sh installs (from the Go module proxy, once)."""
    proc = subprocess.run(["bash", str(ROOT / "devenv" / "toolchain" / "kube-score.sh")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"devenv/toolchain/kube-score.sh failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def prod_manifests(tmp_path_factory) -> list:
    """The shipped prod stack (ACME, LoadBalancer edge, prod replicas) rendered by `pulumi up`."""
    project = Project(tmp_path_factory.mktemp("hardening-render"))
    project.init_stack("prod", SECRETS)
    project.set_config("prod", "kubernetes.renderToDirectory", "rendered/prod")
    project.set_config("prod", "smokeTest.enabled", False)  # nothing answers: the manifests are not applied
    project.pulumi("config", "rm", "platform:promotion", "-s", "prod")  # no staging stack in this backend
    project.pulumi("up", "--yes", "-s", "prod", timeout=900)
    files = sorted((project.dir / "rendered" / "prod").rglob("*.yaml"))
    assert files, "prod rendered no manifests"
    return files


def accepted_findings() -> set[tuple[str, str]]:
    """(check, "Kind/name") pairs docs/security.md accepts, from its table of accepted findings."""
    section = SECURITY_DOC.read_text().split("## Accepted kube-score findings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*`([a-z-]+)`\s*\|\s*([^|]+?)\s*\|", section, re.MULTILINE)
    return {(check, target.strip("` ")) for check, objects in rows for target in objects.split(",")}


def critical_findings(kube_score: str, files: list) -> dict[tuple[str, str], list[str]]:
    proc = subprocess.run([kube_score, "score", "--enable-optional-test", "container-seccomp-profile",
                           "--output-format", "json", *map(str, files)], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip(), f"kube-score printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    findings = {}
    for scored in json.loads(proc.stdout):
        target = f"{scored['type_meta']['kind']}/{scored['object_meta']['name']}"
        for result in scored["checks"]:
            check = result["check"]["id"]
            if check in CHECKED and not result["skipped"] and result["grade"] <= CRITICAL:
                findings[(check, target)] = sorted({c["summary"] for c in result["comments"] or []})
    return findings


def test_kube_score_finds_nothing_critical_in_prod_beyond_the_documented_exceptions(kube_score, prod_manifests):
    findings = critical_findings(kube_score, prod_manifests)
    print(f"kube-score {kube_score}: {len(prod_manifests)} prod manifests, {len(findings)} critical findings in "
          f"{', '.join(CATEGORIES)}:")
    for (check, target), summaries in sorted(findings.items()):
        print(f"  {check} {target}: {'; '.join(summaries)}")
    accepted = accepted_findings()
    assert set(findings) - accepted == set(), "critical findings not accepted in docs/security.md"
    # An exception that no longer happens is removed from the docs, so the list stays true.
    assert accepted - set(findings) == set(), "docs/security.md accepts findings kube-score no longer reports"


def test_the_accepted_findings_table_names_only_checked_categories():
    accepted = accepted_findings()
    assert accepted, "docs/security.md has no accepted-findings table"
    assert {check for check, _ in accepted} <= CHECKED


# --- on the local cluster ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def hardened(cluster, tmp_path_factory):
    """A copy of the dev stack on the local cluster, in a namespace of its own."""
    cluster.fresh_namespace(NAMESPACE)
    project = Project(tmp_path_factory.mktemp("cluster-hardening"))
    project.init_stack("dev", SECRETS)
    deploy_to_cluster(project, "dev", NAMESPACE, http_port=32090, https_port=32490)
    project.pulumi("up", "--yes", "-s", "dev", "--message", "hardened", timeout=900)
    yield project
    cluster.drop_namespace(NAMESPACE)


def _pods(cluster, selector: str | None = None) -> list[dict]:
    return cluster.get(NAMESPACE, "pods", *(["-l", selector] if selector else []))["items"]


def test_hardened_pods_run_as_their_non_root_users(cluster, hardened):
    users = {target: cluster.exec(NAMESPACE, target, "id -u").strip()
             for target in ("deploy/edge", "deploy/api", "deploy/worker", "statefulset/postgres-main",
                            "deploy/backup-metrics-main")}
    assert users == {"deploy/edge": "65534", "deploy/api": "65534", "deploy/worker": "65534",
                     "statefulset/postgres-main": "999", "deploy/backup-metrics-main": "999"}


def test_root_filesystems_are_read_only_and_scratch_space_is_writable(cluster, hardened):
    result = cluster.exec(NAMESPACE, "deploy/api", "touch /app/x 2>&1 || echo refused; touch /tmp/x && echo tmp-ok")
    assert "Read-only file system" in result and "refused" in result and "tmp-ok" in result


def test_every_running_container_has_no_capabilities(cluster, hardened):
    for target in ("deploy/edge", "deploy/api", "statefulset/postgres-main"):
        status = cluster.exec(NAMESPACE, target, "grep -E '^Cap(Eff|Prm|Bnd)|^NoNewPrivs|^Seccomp:' /proc/1/status")
        fields = dict(line.split(":\t", 1) for line in status.strip().splitlines())
        assert {fields[f].strip() for f in ("CapEff", "CapPrm", "CapBnd")} == {"0000000000000000"}, (target, fields)
        assert fields["NoNewPrivs"].strip() == "1", (target, fields)
        assert fields["Seccomp"].strip() == "2", (target, fields)  # 2: filter mode (RuntimeDefault)


def _ready_addresses(cluster, service: str) -> set[str]:
    slices = cluster.get(NAMESPACE, "endpointslices", "-l", f"kubernetes.io/service-name={service}")["items"]
    return {address for endpoint_slice in slices for endpoint in endpoint_slice.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready", True) for address in endpoint["addresses"]}


def _pg_isready(cluster, addresses: set[str]) -> dict[str, bool]:
    script = "; ".join(f"pg_isready -q -t 3 -h {a} -p 5432 && echo {a}=ok || echo {a}=no" for a in sorted(addresses))
    output = cluster.exec(NAMESPACE, "statefulset/postgres-main", script or "true")
    return {line.split("=")[0]: line.endswith("=ok") for line in output.split() if "=" in line}


def test_during_a_backup_every_address_of_the_database_service_accepts_postgresql(cluster, hardened):
    psql = 'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc'
    cluster.exec(NAMESPACE, "postgres-main-0", f'{psql} "create table if not exists backup_hold (id int)"')
    # pg_dump waits for a table another session holds exclusively: the backup job's pod runs (and is
    # Ready) for as long as the hold lasts, however fast the machine, instead of for a second or two.
    hold = subprocess.Popen(
        [*_kubectl(cluster), "--namespace", NAMESPACE, "exec", "postgres-main-0", "--", "sh", "-c",
         f'{psql} "begin; lock table backup_hold in access exclusive mode; select pg_sleep(25); commit"'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while cluster.exec(NAMESPACE, "postgres-main-0", f"{psql} \"select count(*) from pg_locks where "
                           "relation = 'backup_hold'::regclass and mode = 'AccessExclusiveLock' and granted\"").strip() != "1":
            assert time.monotonic() < deadline and hold.poll() is None, "the lock holder never held the table"
            time.sleep(0.5)
        job = f"hardening-backup-{int(time.time())}"
        cluster.kubectl("--namespace", NAMESPACE, "create", "job", job, "--from=cronjob/backup-main")
        samples, job_ips, failures = 0, set(), []
        database_ips = {pod["status"].get("podIP") for pod in _pods(cluster, "app.kubernetes.io/name=postgres-main")}
        deadline = time.monotonic() + 300
        while True:
            pods = _pods(cluster, f"job-name={job}")
            running = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
            addresses = _ready_addresses(cluster, "postgres-main")
            if running:
                samples += 1
                job_ips |= {p["status"]["podIP"] for p in running}
                answers = _pg_isready(cluster, addresses)
                failures += [(address, "not accepting") for address, ok in answers.items() if not ok]
                failures += [(address, "not the database") for address in addresses - database_ips]
            status = cluster.get(NAMESPACE, "job", job)["status"]
            if status.get("succeeded") or status.get("failed"):
                break
            assert time.monotonic() < deadline, f"backup job {job} did not finish in 300 s: {status}"
            time.sleep(1)
    finally:
        hold.wait(timeout=120)
    print(f"backup job {job}: {samples} samples while its pod ran (pod IPs {sorted(job_ips)}); database Service "
          f"addresses {sorted(addresses)}; failures {failures}")
    assert status.get("succeeded") == 1, f"backup job {job} failed: {status}"
    assert samples >= 3, f"only {samples} samples while the backup job's pod ran"
    assert failures == []
    assert job_ips.isdisjoint(addresses) and addresses == database_ips


def _kubectl(cluster) -> list[str]:
    from cluster import CONTEXT, KUBECONFIG, KUBECTL
    return [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "--context", CONTEXT]
