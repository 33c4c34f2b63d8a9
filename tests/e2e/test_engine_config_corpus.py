"""The broken-config corpus through `pulumi preview` on the real engine.

tests/unit/test_config_corpus.py runs every case (each a single mutation of a committed stack
file) through the program's entry point under mocks, with the config encoded as the engine
encodes it. Here one case per schema key of two levels (`edge.tls`, `services.*`,
`alerting.thresholds`...) goes through the real thing: the mutated stack file is written,
`pulumi preview` runs the program on the engine, and the preview must fail with the program's
own message naming the stack file and the key, having registered no resource (a required key
left out is refused by the engine first, from Pulumi.yaml's config schema). Two throw-away
projects share the cases, so the run takes about half as long on two cores.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from engine import ROOT, Project

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
WORKERS = 2


def corpus_module():
    spec = importlib.util.spec_from_file_location("config_corpus", ROOT / "tests" / "unit" / "test_config_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def sample(module) -> list[tuple[str, object]]:
    """(stack, case): the first case of each two-level key, on the first stack it applies to."""
    chosen: dict[str, tuple[str, object]] = {}
    for case in module.CORPUS:
        key = ".".join(module.generalised(case.path).split(".")[:2])
        chosen.setdefault(key, (case.stacks[0], case))
    return list(chosen.values())


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    made = []
    for index in range(WORKERS):
        project = Project(tmp_path_factory.mktemp(f"corpus-{index}"))
        for stack in ("dev", "staging", "prod"):
            project.init_stack(stack, SECRETS)
        made.append(project)
    return made


def refused_by_preview(project: Project, stack: str, case) -> str | None:
    """None when the preview of the mutated stack file fails naming the file and the key."""
    path = project.dir / f"Pulumi.{stack}.yaml"
    original = path.read_text()
    document = yaml.safe_load(original)
    raw = {key.removeprefix("platform:"): copy.deepcopy(value) for key, value in document["config"].items()
           if key.startswith("platform:") and not (isinstance(value, dict) and "secure" in value)}
    case.apply(raw)
    secure = {key: value for key, value in document["config"].items()  # a case may set a secret's key in plain text
              if isinstance(value, dict) and "secure" in value and key.removeprefix("platform:") not in raw}
    document["config"] = {**{f"platform:{key}": value for key, value in raw.items()}, **secure}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        result = project.pulumi("preview", "-s", stack, check=False, timeout=300)
    finally:
        path.write_text(original)
    output = result.output
    if result.code == 0:
        return "the preview passed"
    # A required key (no default in Pulumi.yaml's config schema) is refused by the engine itself,
    # before the program starts, naming the stack and the key.
    if f"Stack '{stack}' is missing configuration value '{case.expected_key}'" in output:
        return None
    if f"Pulumi.{stack}.yaml: invalid configuration" not in output:
        return f"no config refusal naming Pulumi.{stack}.yaml:\n{output[-1500:]}"
    if not re.search(rf"{re.escape(case.expected_key)}(?![\w-])", output):
        return f"the refusal does not name {case.expected_key}:\n{output[-1500:]}"
    # The stack itself is always "to create" in a first preview; anything more was registered.
    planned = re.search(r"\+ (\d+) to create", output)
    if planned and int(planned.group(1)) > 1:
        return f"the preview planned resources before refusing:\n{output[-1500:]}"
    return None


def test_broken_configs_are_refused_by_pulumi_preview_naming_file_and_key(projects):
    module = corpus_module()
    cases = sample(module)
    shares = [cases[index::WORKERS] for index in range(WORKERS)]

    def run(share, project):
        return [(stack, case, refused_by_preview(project, stack, case)) for stack, case in share]

    with ThreadPoolExecutor(WORKERS) as pool:
        results = [row for rows in pool.map(run, shares, projects) for row in rows]
    problems = [f"{stack}: {case.path}={case.value!r} ({case.why}): {problem}"
                for stack, case, problem in results if problem]
    print(f"\npulumi preview refused {len(results) - len(problems)} of {len(results)} broken configs "
          f"(one per two-level key; all {len(module.broken_configs())} run under mocks in tests/unit)")
    assert len(results) >= 60
    assert not problems, "\n\n".join(problems)
