"""Mutation testing of every service's domain rules (``make mutation``).

Do the fast tests of a service's ``domain/`` package notice when a rule in it changes?
mutmut changes the code one small edit at a time (a ``<`` for a ``<=``, a constant, a
dropped call) and runs the tests that cover it; a change no test notices "survives" and
marks a rule nothing checks.

mutmut 3 works on one project at a time: it reads ``[tool.mutmut]`` from the
``pyproject.toml`` of the directory it runs in, copies the sources to ``mutants/`` and puts
that copy first on ``sys.path``. Our services are src-layout packages in one repository,
installed in editable mode, so each service gets a work directory of its own under
``.mutation/<service>/`` (git-ignored) with a copy of its ``src/`` (the whole package, so
the mutated copy shadows the installed one; only ``domain/`` is mutated), its domain unit
tests and a generated ``pyproject.toml``. The results are counted per service and in
total, the surviving mutants written with their diffs to
``test-artifacts/mutation-report.txt``, and the last line printed is::

    mutation score: NN.N% (killed K of N)

Which tests run: the files in ``services/<service>/tests/`` that import the service's
``domain`` package and need no database, broker or HTTP server (no ``async def test``, no
adapters, handlers, bootstrap or API, no migrated database). They run in milliseconds,
which is what makes thousands of mutants affordable.

Every survivor is either killed by a new test or explained in ``tools/mutation_explained.toml``
(an equivalent mutant, and why; or why it is not worth a test). mutmut names a mutant by its
function and its number within that function (``...x_verify__mutmut_12``), and the numbers
shift whenever the function is edited, so a name alone could lend an old explanation to a
new mutant. An explanation is therefore keyed by the function and a fingerprint of the
mutation itself: the first 8 hex digits of the SHA-256 of the diff's removed and added
lines, stripped of indentation (``diff = "..."`` beside the name, which is kept for the
reader). It holds while the mutated line reads the same, whatever is renumbered or changed
elsewhere; when the line changes, the survivor shows as ``UNEXPLAINED`` and must be looked
at again (the same mutation of two identical lines of one function shares one explanation:
the second ``if step.action == "hold":`` of ``advance``, say). The report gives each
survivor's fingerprint and its explanation or ``UNEXPLAINED``, counts the unexplained ones,
and lists explanations that no longer match a survivor of the services run (killed since,
or the line changed).

Usage: ``python tools/mutation.py [service ...] [--max-children N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
REPORT = ROOT / "test-artifacts" / "mutation-report.txt"
EXPLAINED = ROOT / "tools" / "mutation_explained.toml"
SERVICES = {
    "order-svc": "order_svc",
    "inventory-svc": "inventory_svc",
    "customer-svc": "customer_svc",
    "channel-gateway": "channel_gateway",
    "notifier": "notifier",
}
#: What a test file must not touch to count as a fast, plain-object test of the domain.
NOT_PLAIN = re.compile(
    r"async def test|MigratedDatabase|asyncpg|httpx|uvicorn|"
    r"\.(adapters|handlers|bootstrap|api)\b|import (adapters|handlers|bootstrap)\b"
)
#: mutmut's verdicts that count as "the tests noticed".
KILLED = {"killed", "timeout", "caught by type check"}
#: Verdicts that are no verdict at all (nothing was run); left out of the score.
UNJUDGED = {"skipped", "not checked", "check was interrupted by user"}
RESULT = re.compile(r"^\s+(\S+): (.+)$")


@dataclass
class Outcome:
    """mutmut's verdict on every mutant of one service."""

    service: str
    status_by_mutant: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def judged(self) -> dict[str, str]:
        return {m: s for m, s in self.status_by_mutant.items() if s not in UNJUDGED}

    @property
    def killed(self) -> int:
        return sum(1 for status in self.judged.values() if status in KILLED)

    @property
    def survivors(self) -> list[str]:
        return sorted(m for m, s in self.judged.items() if s not in KILLED)


def function_of(mutant: str) -> str:
    """``pkg.domain.mod.x_name__mutmut_7`` -> ``pkg.domain.mod.x_name``."""
    return mutant.rsplit("__mutmut_", 1)[0]


def fingerprint(diff: str) -> str:
    """What a mutant changes, independent of line numbers, indentation and numbering."""
    changed = [
        line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "-+" and not line.startswith(("---", "+++"))
    ]
    return hashlib.sha256("\n".join(changed).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Explanation:
    mutant: str  # the name it was written for (numbers may have shifted since)
    diff: str  # the fingerprint of its mutation
    why: str


def explanations(path: Path = EXPLAINED) -> dict[tuple[str, str], Explanation]:
    """The explanations by (function, fingerprint); a ``why`` naming an entry of
    ``[reasons]`` stands for that reason's text."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    reasons: dict[str, str] = data.get("reasons", {})
    found = {}
    for mutant, entry in data.get("mutants", {}).items():
        why = reasons.get(entry["why"], entry["why"])
        found[(function_of(mutant), entry["diff"])] = Explanation(mutant, entry["diff"], why)
    return found


def score_line(killed: int, total: int) -> str:
    percent = 100.0 * killed / total if total else 0.0
    return f"mutation score: {percent:.1f}% (killed {killed} of {total})"


def domain_tests(service: str, package: str) -> list[Path]:
    """The service's fast tests of its domain package (see the module docstring)."""
    tests = ROOT / "services" / service / "tests"
    chosen = []
    for path in sorted(tests.glob("test_*.py")):
        text = path.read_text()
        if f"{package}.domain" in text and not NOT_PLAIN.search(text):
            chosen.append(path)
    return chosen


def test_data(service: str) -> list[Path]:
    """The directories beside the service's tests (data files they read)."""
    tests = ROOT / "services" / service / "tests"
    return [d for d in sorted(tests.iterdir()) if d.is_dir() and d.name != "__pycache__"]


def prepare(service: str, package: str, tests: list[Path]) -> Path:
    """A fresh work directory: the service's sources, its domain tests, a config."""
    work = WORK / service
    if work.exists():
        shutil.rmtree(work)
    (work / "tests").mkdir(parents=True)
    shutil.copytree(
        ROOT / "services" / service / "src",
        work / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "migrations"),
    )
    for test in tests:
        shutil.copy2(test, work / "tests" / test.name)
    for data in test_data(service):  # what the tests read (fixtures/*.json, say)
        shutil.copytree(data, work / "tests" / data.name)
    selected = ", ".join(f'"tests/{test.name}"' for test in tests)
    (work / "pyproject.toml").write_text(
        "# Generated by tools/mutation.py for one mutmut run; not the service's config.\n"
        "[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f'only_mutate = ["src/{package}/domain/*"]\n'
        f"pytest_add_cli_args_test_selection = [{selected}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]\n'
        "\n"
        "[tool.pytest.ini_options]\n"
        'addopts = "--import-mode=importlib"\n'
        'asyncio_mode = "auto"\n'
        'asyncio_default_fixture_loop_scope = "function"\n'
    )
    return work


def mutmut(work: Path, *args: str, capture: bool = False) -> str:
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    done = subprocess.run(
        command, cwd=work, text=True, capture_output=capture, check=False, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        output = (done.stdout or "") + (done.stderr or "") if capture else ""
        raise SystemExit(f"{' '.join(command)} failed in {work} ({done.returncode})\n{output}")
    return done.stdout or ""


def run_service(service: str, package: str, max_children: int) -> Outcome:
    tests = domain_tests(service, package)
    if not tests:
        raise SystemExit(f"{service}: no domain unit tests found in services/{service}/tests")
    print(f"== {service}: mutating src/{package}/domain with {len(tests)} test files", flush=True)
    work = prepare(service, package, tests)
    mutmut(work, "run", "--max-children", str(max_children), capture=True)
    outcome = Outcome(service)
    for line in mutmut(work, "results", "--all", "true", capture=True).splitlines():
        match = RESULT.match(line)
        if match:
            outcome.status_by_mutant[match[1]] = match[2]
    outcome.diffs = diffs(work, outcome.survivors)
    return outcome


#: The diffs of the named mutants, as JSON, in one process in the work directory (one
#: ``mutmut show`` per mutant costs a second each: many minutes for a few hundred).
DIFFS = """
import json, sys
from pathlib import Path
from mutmut.mutation.diff_apply import get_diff_for_mutant
wanted, found = set(sys.argv[1:]), {}
for meta in Path("mutants").rglob("*.py.meta"):
    path = meta.relative_to("mutants").with_suffix("")
    for key in json.loads(meta.read_text()).get("exit_code_by_key", {}):
        if key in wanted:
            found[key] = get_diff_for_mutant(key, path=path)
print(json.dumps(found))
"""


def diffs(work: Path, mutants: list[str]) -> dict[str, str]:
    if not mutants:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", DIFFS, *mutants],
        cwd=work,
        text=True,
        capture_output=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    found: dict[str, str] = json.loads(done.stdout)
    return {mutant: found.get(mutant, "(no diff found)").strip() for mutant in mutants}


def report(
    outcomes: list[Outcome],
    seconds: float,
    explained: dict[tuple[str, str], Explanation] | None = None,
) -> list[str]:
    """The report's text: a score line per service, the unexplained count, each survivor
    with its explanation (or ``UNEXPLAINED``) and diff, stale explanations; its last line
    is the overall score."""
    explained = {} if explained is None else explained
    used: set[tuple[str, str]] = set()
    unexplained_by_service: dict[str, int] = {}
    body: list[str] = []
    for outcome in outcomes:
        if not outcome.survivors:
            continue
        body.append(f"--- {outcome.service}: {len(outcome.survivors)} not killed")
        for mutant in outcome.survivors:
            diff = outcome.diffs[mutant]
            key = (function_of(mutant), fingerprint(diff))
            explanation = explained.get(key)
            if explanation is None:
                verdict = "UNEXPLAINED"
                unexplained_by_service[outcome.service] = (
                    unexplained_by_service.get(outcome.service, 0) + 1
                )
            else:
                verdict = f"explained: {explanation.why}"
                used.add(key)
            status = outcome.status_by_mutant[mutant]
            body += [f"{mutant}: {status} [diff {key[1]}]", verdict, diff, ""]
    packages = tuple(f"{SERVICES[outcome.service]}." for outcome in outcomes)
    stale = sorted(
        e.mutant for k, e in explained.items() if k not in used and e.mutant.startswith(packages)
    )
    if stale:
        body.append(f"--- {len(stale)} explanations match no survivor (killed, or line changed)")
        body += [*stale, ""]

    lines = [f"Mutation testing of services/*/src/*/domain ({seconds:.0f} s)", ""]
    for outcome in outcomes:
        counts = Counter(outcome.status_by_mutant.values())
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        unexplained = unexplained_by_service.get(outcome.service, 0)
        lines.append(
            f"{outcome.service}: {score_line(outcome.killed, len(outcome.judged))} [{detail}]"
            f"; {len(outcome.survivors)} not killed, {unexplained} unexplained"
        )
    survivors = sum(len(outcome.survivors) for outcome in outcomes)
    unexplained = sum(unexplained_by_service.values())
    lines += [
        f"not killed: {survivors}, explained {survivors - unexplained}, "
        f"unexplained {unexplained} (explanations: tools/{EXPLAINED.name})",
        "",
        *body,
    ]
    killed = sum(outcome.killed for outcome in outcomes)
    total = sum(len(outcome.judged) for outcome in outcomes)
    lines.append(score_line(killed, total))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", help=f"some of {', '.join(SERVICES)}")
    parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        parser.error(f"unknown services: {', '.join(sorted(unknown))}")
    started = time.monotonic()
    outcomes = [
        run_service(service, SERVICES[service], args.max_children)
        for service in (args.services or SERVICES)
    ]
    lines = report(outcomes, time.monotonic() - started, explanations())
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[2 : 3 + len(outcomes)]))
    print(f"surviving mutants and their diffs: {REPORT.relative_to(ROOT)}")
    print(lines[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
