"""``make mutation``: mutation testing of the Lambda runtime (lambda/rightsizing_runtime).

mutmut derives a mutant's module name from its file's path (``lambda/rightsizing_runtime/x.py``
would be ``lambda.rightsizing_runtime.x``), while the tests import the package as Lambda does,
``rightsizing_runtime`` (pytest's ``pythonpath = ["lambda", "."]``): the names never meet and
every mutant would count as untested. So the run happens in a staging directory,
``build/mutation``, laid out the way the tests import the code: ``rightsizing_runtime/`` (a copy
of ``lambda/rightsizing_runtime``) and ``tests/`` at its root, with a ``pyproject.toml`` that
configures mutmut and pytest for that layout. The repository itself is never mutated.

The tests run are the fast suite's runtime tests (``RUNTIME_TESTS``): the construct tests that
synthesize templates are left out (minutes each, and they call no runtime function), which can
only lower the score, never raise it. For each mutant mutmut runs only the tests that called the
mutated function. A few listed files mix both (``test_apply_fields``, ``test_fleet_runtime``):
their synthesizing tests run once, in mutmut's stats phase, and call none of the mutated
functions, so no mutant runs them (``mutants/mutmut-stats.json`` shows which tests a function
has; a CDK synthesis in a forked mutant run would share the parent's jsii process).

The score of a module is killed / (mutants - equivalent mutants). Equivalent mutants (no test
can tell them from the original, because the program behaves the same) are listed, each with its
reason, in ``tests/mutation/equivalents.toml``; an entry names the function and the exact lines
mutmut changed, so an entry whose code has changed no longer matches and its mutant counts again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGING = ROOT / "build" / "mutation"
PACKAGE = "rightsizing_runtime"
EQUIVALENTS = ROOT / "tests" / "mutation" / "equivalents.toml"
#: The fast suite's tests of the runtime (tests/e2e and the synthesizing construct tests aside).
RUNTIME_TESTS = (
    "tests/test_decision.py",
    "tests/test_decision_boundaries.py",
    "tests/test_decision_prices.py",
    "tests/test_utilization.py",
    "tests/test_apply_core.py",
    "tests/test_apply_steps.py",
    "tests/test_apply_fields.py",
    "tests/test_audit.py",
    "tests/test_handlers.py",
    "tests/test_aws_errors.py",
    "tests/test_job_request.py",
    "tests/test_fleet_runtime.py",
    "tests/test_cli.py",
    "tests/test_evidence.py",
)
#: Modules held to the issue-19 target: at least this percent of non-equivalent mutants killed.
TARGETS = {"decision": 90.0, "utilization": 90.0, "apply": 90.0, "apply_steps": 90.0}
KILLED = {"killed", "timeout", "caught by type check"}
# mutmut's exit-code-to-status table (mutmut.stats.status_by_exit_code, mutmut 3.8).
STATUS_BY_EXIT_CODE = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "interrupted",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}


@dataclass(frozen=True)
class Mutant:
    """One mutant of one module, with its verdict and, for survivors, mutmut's diff."""

    module: str
    name: str
    status: str
    diff: str = ""

    @property
    def function(self) -> str:
        """The mangled function name without the mutant's number (``x_decide``)."""
        return self.name.rsplit(".", 1)[-1].partition("__mutmut_")[0]


def stage(only: list[str]) -> None:
    """Lay out build/mutation: the package and the tests at the root, and the configuration.

    ``only``: the modules to mutate (all of the package when empty).
    """
    shutil.rmtree(STAGING, ignore_errors=True)
    STAGING.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "lambda" / PACKAGE, STAGING / PACKAGE, ignore=ignore)
    shutil.copytree(
        ROOT / "tests", STAGING / "tests", ignore=shutil.ignore_patterns("e2e", "__pycache__")
    )
    # Some tests read the README (the documented keys of the events); tests/infra.py imports
    # tools.cfn.
    shutil.copy2(ROOT / "README.md", STAGING / "README.md")
    shutil.copytree(ROOT / "tools", STAGING / "tools", ignore=ignore)
    tests = [t for t in RUNTIME_TESTS if (ROOT / t).is_file()]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    markers = project["tool"]["pytest"]["ini_options"]["markers"]
    (STAGING / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            # Written by tools/mutation.py for this staging directory; not the project's.
            [tool.mutmut]
            source_paths = ["{PACKAGE}"]
            also_copy = ["README.md", "tools"]
            only_mutate = {json.dumps([f"{PACKAGE}/{m}.py" for m in only])}
            pytest_add_cli_args_test_selection = {json.dumps(tests)}
            pytest_add_cli_args = ["-m", "not slow and not e2e", "-p", "no:cacheprovider"]
            use_git_change_detection = false

            [tool.pytest.ini_options]
            pythonpath = ["."]
            addopts = "--strict-markers"
            markers = {json.dumps(markers)}
            """
        )
    )


def run_mutmut(max_children: int) -> None:
    """``mutmut run`` in the staging directory (its output goes to build/mutation/mutmut.log)."""
    mutmut = Path(sys.executable).parent / "mutmut"
    log = STAGING / "mutmut.log"
    print(f"mutmut run in {STAGING.relative_to(ROOT)} (log: {log.relative_to(ROOT)})", flush=True)
    with log.open("w") as out:
        code = subprocess.call(
            [str(mutmut), "run", "--max-children", str(max_children)],
            cwd=STAGING,
            stdout=out,
            stderr=subprocess.STDOUT,
            # The decision core's property tests run once per mutant: 50 examples each instead
            # of the suite's 300 (a weaker suite: the score can only be lower for it).
            env={
                **os.environ,
                "PYTHONDONTWRITEBYTECODE": "1",
                "RIGHTSIZING_PROPERTY_EXAMPLES": "50",
            },
        )
    if code != 0:
        print(log.read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"mutmut run failed (exit {code}); see {log}")


def results() -> list[Mutant]:
    """Every mutant's verdict, from mutmut's per-file meta data; survivors with their diffs."""
    mutants = []
    for meta in sorted((STAGING / "mutants" / PACKAGE).glob("*.py.meta")):
        module = meta.name.removesuffix(".py.meta")
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in exit_codes.items():
            status = STATUS_BY_EXIT_CODE.get(code, "not checked" if code is None else "suspicious")
            diff = "" if status in KILLED else show(module, name)
            mutants.append(Mutant(module=module, name=name, status=status, diff=diff))
    return mutants


def show(module: str, name: str) -> str:
    """The lines mutmut changed in a mutant (its diff's ``-``/``+`` lines, stripped)."""
    # mutmut's own diff (what ``mutmut show`` prints), read in-process: one subprocess per
    # survivor would cost a second each. mutmut reads its configuration from the working
    # directory, the staging one.
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(STAGING)
    try:
        return changed_lines(get_diff_for_mutant(name, path=Path(PACKAGE) / f"{module}.py"))
    finally:
        os.chdir(cwd)


def changed_lines(diff: str) -> str:
    """The ``-``/``+`` lines of a unified diff, without file headers, each stripped."""
    lines = [
        line[0] + " " + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "-+" and not line.startswith(("---", "+++"))
    ]
    return "\n".join(lines)


def load_equivalents(path: Path = EQUIVALENTS) -> list[dict[str, str]]:
    """The reviewed equivalent mutants: ``module``, ``function``, ``diff`` and ``reason`` each."""
    entries: list[dict[str, str]] = tomllib.loads(path.read_text()).get("equivalent", [])
    for entry in entries:
        missing = {"module", "function", "diff", "reason"} - set(entry)
        if missing or not entry["reason"].strip():
            raise SystemExit(f"{path}: entry {entry} lacks {sorted(missing) or ['a reason']}")
    return entries


def is_equivalent(mutant: Mutant, entry: dict[str, str]) -> bool:
    """Whether a reviewed entry describes this mutant (same module, function and change)."""
    return (
        mutant.module == entry["module"]
        and mutant.function == entry["function"]
        and mutant.diff == changed_lines(entry["diff"])
    )


def report(mutants: list[Mutant], equivalents: list[dict[str, str]]) -> bool:
    """Print the per-module table and the survivors; return whether every target is met."""
    matched: set[int] = set()
    equivalent: set[str] = set()
    for mutant in mutants:
        if mutant.status in KILLED:
            continue
        for i, entry in enumerate(equivalents):
            if is_equivalent(mutant, entry):
                matched.add(i)
                equivalent.add(mutant.name)
                break
    modules = sorted({m.module for m in mutants})
    print()
    header = f"{'module':<24}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'survived':>10}{'score':>9}"
    print(header)
    print("-" * len(header))
    met = True
    for module in modules:
        own = [m for m in mutants if m.module == module]
        statuses = Counter(m.status for m in own)
        equiv = sum(1 for m in own if m.name in equivalent)
        killed = sum(statuses[s] for s in KILLED)
        counted = len(own) - equiv
        score = 100.0 * killed / counted if counted else 100.0
        target = TARGETS.get(module)
        flag = ""
        if target is not None:
            flag = f"  (target {target:g}%)" if score >= target else f"  BELOW {target:g}%"
            met = met and score >= target
        print(
            f"{module:<24}{len(own):>8}{killed:>8}{equiv:>8}{counted - killed:>10}"
            f"{score:>8.1f}%{flag}"
        )
    survivors = [m for m in mutants if m.status not in KILLED and m.name not in equivalent]
    if survivors:
        print(f"\n{len(survivors)} mutants not killed (mutmut show <name> in build/mutation):")
        for mutant in survivors:
            change = mutant.diff.replace("\n", " | ")
            print(f"  {mutant.status:<11} {mutant.name}: {change}")
    # Only the modules mutated this time can tell an entry is stale.
    stale = [e for i, e in enumerate(equivalents) if i not in matched and e["module"] in modules]
    if stale:
        print(
            f"\n{len(stale)} entries of {EQUIVALENTS.relative_to(ROOT)} match no surviving mutant"
        )
        print("(the code changed, or a test now kills it): review and remove them:")
        for entry in stale:
            print(f"  {entry['module']}.{entry['function']}: {entry['diff'].strip()}")
    return met


def main(argv: list[str] | None = None) -> int:
    """Stage, run mutmut (unless ``--report-only``) and print the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--report-only", action="store_true", help="report the last run without running again"
    )
    parser.add_argument(
        "only", nargs="*", help="modules to mutate (decision utilization ...); default: all"
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.only if not (ROOT / "lambda" / PACKAGE / f"{m}.py").is_file()]
    if unknown:
        parser.error(f"no module {', '.join(unknown)} in lambda/{PACKAGE}")
    if not args.report_only:
        stage(args.only)
        run_mutmut(args.max_children)
    met = report(results(), load_equivalents())
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
