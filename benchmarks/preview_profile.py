"""Where a `pulumi preview` of dev spends its time: our program's parts against the engine's floor.

    source scripts/env.sh && python benchmarks/preview_profile.py [--repeat 3] [--top 15]

Prints, median of --repeat, in seconds:
  - the engine's floor: `pulumi preview` of an empty Python program (`import pulumi` only) on the
    same engine, CLI and language host, in its own throw-away project and backend;
  - `pulumi preview` of dev (manifests rendered, so no cluster is involved), without and with the
    policy pack (the pack's own start is the difference);
  - inside the program, each in a fresh interpreter: importing the program's modules, validating
    the stack's config into the pydantic models, and constructing every component under Pulumi's
    mocks (no engine), plus cProfile's --top functions of that construction by their own time.
What is ours is the preview minus the floor; the in-process figures say which part of ours.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from engine import Project  # noqa: E402

SECRETS = {"mainDbPassword": "benchmark-db-password", "sessionSigningKey": "benchmark-signing-key"}
PYTHON = str(ROOT / ".venv" / "bin" / "python")

IMPORT = "import components.platform, components.config.loading, components.targets.kubernetes"
VALIDATE = textwrap.dedent("""
    import sys; sys.path.insert(0, "tests")
    import time
    from support import raw_stack_config
    from components.config.loading import parse_platform_config
    raw = raw_stack_config("dev")
    started = time.perf_counter()
    parse_platform_config(raw, "dev")
    print(time.perf_counter() - started)
""")
CONSTRUCT = textwrap.dedent("""
    import sys; sys.path.insert(0, "tests")
    import cProfile, io, pstats, time
    from support import deploy_stack, install_mocks
    import components.platform, components.config.loading, components.targets.kubernetes  # imports timed apart
    install_mocks("dev")
    started = time.perf_counter()
    deploy_stack("dev")
    print(time.perf_counter() - started)
    # Profiled again, separately: cProfile slows what it watches.
    install_mocks("dev")
    profile = cProfile.Profile()
    profile.enable()
    deploy_stack("dev")
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(TOP)
    print(out.getvalue(), file=sys.stderr)
""")


def seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def in_fresh_python(script: str) -> tuple[float, str]:
    proc = subprocess.run([PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1]), proc.stderr


def empty_program(workdir: Path) -> Project:
    project = Project(workdir)
    (project.dir / "__main__.py").write_text("import pulumi\n")
    # Same project name and runtime, none of our config schema (its keys are required).
    (project.dir / "Pulumi.yaml").write_text(
        "name: platform\nruntime:\n  name: python\n  options:\n    virtualenv: .venv\n    toolchain: pip\n")
    for stale in ("Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (project.dir / stale).unlink()
    project.pulumi("stack", "init", "floor")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="preview-profile-") as tmp:
        floor = empty_program(Path(tmp) / "floor")
        dev = Project(Path(tmp) / "dev")
        dev.init_stack("dev", SECRETS)
        dev.render_only("dev")
        dev.pulumi("preview", "-s", "dev")  # warm: plugins loaded once, bytecode compiled
        for _ in range(args.repeat):
            results.setdefault("engine floor: preview of an empty Python program", []).append(
                seconds(lambda: floor.pulumi("preview", "-s", "floor")))
            results.setdefault("pulumi preview -s dev", []).append(
                seconds(lambda: dev.pulumi("preview", "-s", "dev")))
            results.setdefault("pulumi preview -s dev --policy-pack policy", []).append(
                seconds(lambda: dev.pulumi("preview", "-s", "dev", "--policy-pack", str(ROOT / "policy"),
                                           "--policy-pack-config", str(ROOT / "policy" / "config" / "dev.json"))))
            importing, _ = in_fresh_python(f"import time; s = time.perf_counter(); {IMPORT}; "
                                           "print(time.perf_counter() - s)")
            results.setdefault("program: import its modules", []).append(importing)
            results.setdefault("program: validate the stack config", []).append(in_fresh_python(VALIDATE)[0])
            constructing, profile_text = in_fresh_python(CONSTRUCT.replace("TOP", str(args.top)))
            results.setdefault("program: construct every component (mocks)", []).append(constructing)
    print("\npreview of dev, median seconds over", args.repeat, "runs (individual runs in brackets):")
    for name, values in results.items():
        print(f"  {name:50s} {statistics.median(values):6.2f}  [{', '.join(f'{v:.2f}' for v in values)}]")
    floor_s = statistics.median(results["engine floor: preview of an empty Python program"])
    dev_s = statistics.median(results["pulumi preview -s dev"])
    print(f"  {'ratio dev / floor (issue 18 target <= 1.5)':50s} {dev_s / floor_s:6.2f}")
    print(f"\ncProfile, component construction (second run), top {args.top} by own time:")
    print("\n".join(profile_text.splitlines()[:args.top + 12]))
    print("reproduce: source scripts/env.sh && python benchmarks/preview_profile.py --repeat", args.repeat)


if __name__ == "__main__":
    main()
