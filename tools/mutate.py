"""Mutation testing of the engine: does the test suite notice when a rule of the engine is wrong?

Each mutant changes one operator or constant of one engine module (a comparison flipped, `and`
for `or`, a `not` dropped, True for False, a number moved by one, a set operator swapped, a
`return` of a boolean inverted); the semantic test suite then runs against it in a scratch
copy of the repository. A mutant the tests fail on is killed; one they pass on survived.
Survivors are printed with their place, to be read: either a test is missing, or the mutant is
equivalent (it cannot change any result) and is listed in ``tools/mutants-equivalent.txt`` with
the reason.

    python tools/mutate.py                       # every engine module (about an hour on 2 cores)
    python tools/mutate.py audit/engine/stack.py # one module
    python tools/mutate.py --jobs 2 --json out.json

The score is killed / (mutants - listed equivalent ones). No network, no installs: it copies
the working tree and runs ``python -m pytest`` there.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = [
    "audit/engine/selectors.py", "audit/engine/ports.py", "audit/engine/stack.py", "audit/engine/analysis.py",
    "audit/engine/compiled.py", "audit/engine/selection.py", "audit/engine/addresses.py", "audit/engine/clients.py",
    "audit/checks/permissive.py", "audit/checks/hygiene.py",
    "audit/engine/classes.py", "audit/engine/verdict.py", "audit/engine/coverage.py",
    "audit/engine/connectivity.py", "audit/engine/kinds/networkpolicy.py", "audit/engine/kinds/admin.py",
    "audit/engine/kinds/clusternetwork.py", "audit/engine/kinds/cilium.py", "audit/engine/kinds/calico.py",
]
# Fast truth tables first: pytest stops at the first failure, so most mutants die in seconds.
TESTS = [
    "tests/test_semantics.py", "tests/test_kind_checks.py", "tests/test_admin.py", "tests/test_cilium.py", "tests/test_calico.py", "tests/test_coverage.py",
    "tests/test_parsing.py", "tests/test_engine_edges.py", "tests/test_reach.py", "tests/test_connectivity.py",
    "tests/test_ingress.py", "tests/test_netpol_analyzer.py", "tests/test_checks.py", "tests/test_examples.py",
    "tests/test_connectivity_graph.py", "tests/test_stack.py", "tests/test_compliance.py", "tests/test_fix.py",
    "tests/test_kind_fields.py", "tests/test_exposure_algebra.py",
]
SELECTED: list[str] = []
"""`--tests`: run only these (a module's own tests first makes a run of it minutes, not an hour)."""
EQUIVALENT = ROOT / "tools" / "mutants-equivalent.txt"
TIMEOUT = 180

_SWAP_CMP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_SWAP_BIN = {ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr, ast.Sub: ast.Add, ast.Add: ast.Sub}


@dataclass(frozen=True)
class Mutant:
    path: str
    index: int
    line: int
    description: str
    text: str = ""
    """The source line, stripped: equivalent mutants are listed by it, so edits elsewhere keep them."""

    @property
    def key(self) -> str:
        return f"{self.path}:{self.line}:{self.description}"

    @property
    def stable_key(self) -> str:
        return f"{self.path} | {self.description} | {self.text}"


def _skip(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Text-only code (docstrings, __str__, describe, explain), type annotations and decorators
    (dataclass options) are not mutated."""
    cur: ast.AST | None = node
    while cur is not None:
        parent = parents.get(cur)
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (
                cur in parent.decorator_list or cur is getattr(parent, "returns", None)):
            return True
        if isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                cur.name in ("__str__", "__repr__", "describe", "explain", "explain_lines", "text", "label")
                or cur.name.startswith("_describe")):
            return True
        if isinstance(cur, (ast.AnnAssign, ast.arg)) or isinstance(cur, ast.JoinedStr):
            return True
        cur = parents.get(cur)
    return False


def _points(tree: ast.Module) -> list[tuple[ast.AST, str, int]]:
    """(node, kind of mutation, line) for every mutation point, in a stable order."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out: list[tuple[ast.AST, str, int]] = []
    for node in ast.walk(tree):
        if _skip(node, parents):
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _SWAP_CMP:
                    out.append((node, f"cmp{i}:{type(op).__name__}->{_SWAP_CMP[type(op)].__name__}", line))
        elif isinstance(node, ast.BoolOp):
            out.append((node, f"bool:{type(node.op).__name__}", line))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((node, "drop-not", line))
        elif isinstance(node, ast.BinOp) and type(node.op) in _SWAP_BIN:
            out.append((node, f"bin:{type(node.op).__name__}->{_SWAP_BIN[type(node.op)].__name__}", line))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append((node, f"const:{node.value}->{not node.value}", line))
        elif isinstance(node, ast.Constant) and type(node.value) is int and not isinstance(parents.get(node), ast.Subscript):
            out.append((node, f"int:{node.value}->{node.value + 1}", line))
        elif (isinstance(node, ast.Return) and isinstance(node.value, (ast.Compare, ast.BoolOp, ast.Call)) and \
                not isinstance(node.value, ast.Call)) or (isinstance(node, ast.Return) and isinstance(node.value, ast.Name)):
            out.append((node, "return-not", line))
    return out


def _apply(tree: ast.Module, index: int) -> tuple[ast.Module, str, int]:
    tree = copy.deepcopy(tree)
    node, kind, line = _points(tree)[index]
    if kind.startswith("cmp"):
        i = int(kind[3:kind.index(":")])
        node.ops[i] = _SWAP_CMP[type(node.ops[i])]()  # type: ignore[attr-defined]
    elif kind.startswith("bool"):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif kind == "drop-not":
        parent = next(p for p in ast.walk(tree) for c in ast.iter_child_nodes(p) if c is node)
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, node.operand)  # type: ignore[attr-defined]
            elif isinstance(value, list):
                setattr(parent, field, [node.operand if v is node else v for v in value])  # type: ignore[attr-defined]
    elif kind.startswith("bin"):
        node.op = _SWAP_BIN[type(node.op)]()  # type: ignore[attr-defined]
    elif kind.startswith("const"):
        node.value = not node.value  # type: ignore[attr-defined]
    elif kind.startswith("int"):
        node.value = node.value + 1  # type: ignore[attr-defined]
    elif kind == "return-not":
        node.value = ast.UnaryOp(ast.Not(), node.value)  # type: ignore[attr-defined]
    return ast.fix_missing_locations(tree), kind, line


def mutants(path: str, root: Path = ROOT) -> list[Mutant]:
    source = (root / path).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    return [Mutant(path, i, line, kind, _code(lines[line - 1]) if 0 < line <= len(lines) else "")
            for i, (_node, kind, line) in enumerate(_points(tree))]


def _code(line: str) -> str:
    """A source line as the equivalents list names it: stripped, without its comment (the list's
    own reason follows ``  #``, so a line's comment would never match)."""
    return line.split("  #", 1)[0].strip()


def load_equivalent() -> set[str]:
    """Stable keys (path | mutation | source line) of mutants that cannot change a result; each
    line of the file carries its reason after a #."""
    if not EQUIVALENT.exists():
        return set()
    return {line.split("  #", 1)[0].strip() for line in EQUIVALENT.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def _workspace() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="mutate-"))
    shutil.copytree(ROOT / "audit", scratch / "audit")
    shutil.copytree(ROOT / "tests", scratch / "tests")
    shutil.copytree(ROOT / "examples", scratch / "examples")
    for folder in ("templates", "benchmarks", "tools"):  # tests read the benchmark's cluster generator and the schema maker
        if (ROOT / folder).exists():
            shutil.copytree(ROOT / folder, scratch / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, scratch / name)
    return scratch


def _run(workspace: Path, mutant: Mutant) -> tuple[Mutant, str, float]:
    # The workspace is a snapshot taken at the start: editing the tree meanwhile changes nothing here.
    source = (workspace / mutant.path).read_text()
    tree, _kind, _line = _apply(ast.parse(source), mutant.index)
    target = workspace / mutant.path
    started = time.monotonic()
    try:
        target.write_text(ast.unparse(tree))
        status = _verdict(workspace)
    finally:
        target.write_text(source)
    return mutant, status, time.monotonic() - started


def _verdict(workspace: Path) -> str:
    """killed (a test failed, hung, or the tests no longer import: the unmutated tree passes, see
    main), survived (all passed), or error: pytest itself failed (usage, no tests, internal)."""
    tests = [t for t in (SELECTED or TESTS) if (workspace / t).exists()]
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests],
                              cwd=workspace, capture_output=True, timeout=TIMEOUT,
                              env={**os.environ, "PYTHONPATH": str(workspace), "PYTHONDONTWRITEBYTECODE": "1",
                                   "NETPOL_PROPERTY_EXAMPLES": "20"})
    except subprocess.TimeoutExpired:
        return "killed"  # a hang is noticed too
    return {0: "survived", 1: "killed", 2: "killed"}.get(proc.returncode, "error")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=ENGINE)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tests", nargs="+", default=[], help="the test files to run against each mutant (default: the engine's)")
    parser.add_argument("--json", help="write every mutant's result here")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument("--score", metavar="JSON", help="score a saved run (--json) against the equivalents list, without running")
    parser.add_argument("--commit", help="with --score: the commit the run was made at (its source lines name the mutants)")
    args = parser.parse_args()
    if args.score:
        return _score_saved(Path(args.score), args.commit)
    SELECTED[:] = args.tests
    workspaces = [] if args.list else [_workspace() for _ in range(args.jobs)]
    todo = [m for p in args.paths for m in mutants(p, workspaces[0] if workspaces else ROOT)]
    if args.list:
        for m in todo:
            print(m.key)
        print(f"{len(todo)} mutants")
        return 0
    equivalent = load_equivalent()
    if _verdict(workspaces[0]) != "survived":  # the unmutated tree must pass, else every mutant looks killed
        for ws in workspaces:
            shutil.rmtree(ws, ignore_errors=True)
        print("the selected tests do not pass on the unmutated tree (in a scratch copy): fix that first", file=sys.stderr)
        return 2
    results: list[tuple[Mutant, str, float]] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            free = list(workspaces)
            futures = {}
            pending = list(todo)
            while pending or futures:
                while pending and free:
                    ws = free.pop()
                    m = pending.pop(0)
                    futures[pool.submit(_run, ws, m)] = ws
                done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in done:
                    free.append(futures.pop(fut))
                    results.append(fut.result())
                    mutant, status, took = results[-1]
                    print(f"{status:8} {took:5.1f}s {mutant.key}", flush=True)
    finally:
        for ws in workspaces:
            shutil.rmtree(ws, ignore_errors=True)
    _summarise(results, equivalent, args.json)
    return 0


def _summarise(results: list[tuple[Mutant, str, float]], equivalent: set[str], json_path: str | None) -> None:
    results.sort(key=lambda r: (r[0].path, r[0].index))
    survived = [m for m, s, _ in results if s == "survived" and m.stable_key not in equivalent]
    listed = sum(1 for m, s, _ in results if s == "survived" and m.stable_key in equivalent)
    killed = sum(1 for _, s, _ in results if s == "killed")
    counted = len(results) - listed
    print(f"\n{killed} killed, {len(survived)} survived, {listed} equivalent (listed) of {len(results)} mutants: "
          f"score {100 * killed / max(counted, 1):.1f}%")
    by_path: dict[str, list[int]] = {}
    for m, s, _ in results:
        if m.stable_key not in equivalent or s == "killed":
            by_path.setdefault(m.path, [0, 0])[0 if s == "killed" else 1] += 1
    for path, (k, sv) in sorted(by_path.items()):
        print(f"  {path}: {k} killed, {sv} survived ({100 * k / max(k + sv, 1):.0f}%)")
    for m in survived:
        print(f"  survived: {m.stable_key}   (line {m.line})")
    for m, s, _ in results:
        if s == "error":
            print(f"  error (pytest did not run; counted as not killed): {m.stable_key}   (line {m.line})")
    if json_path:
        Path(json_path).write_text(json.dumps([{**asdict(m), "status": s, "seconds": round(t, 1)} for m, s, t in results], indent=1))


def _score_saved(path: Path, commit: str | None) -> int:
    saved = json.loads(path.read_text())
    sources: dict[str, list[str]] = {}
    for item in saved:
        if item["path"] not in sources:
            text = (subprocess.run(["git", "show", f"{commit}:{item['path']}"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
                    if commit else (ROOT / item["path"]).read_text())
            sources[item["path"]] = text.splitlines()
    equivalent = load_equivalent()
    results = []
    for item in saved:
        line = _code(sources[item["path"]][item["line"] - 1]) if item["line"] else ""
        results.append((Mutant(item["path"], item["index"], item["line"], item["description"], line), item["status"], item["seconds"]))
    _summarise(results, equivalent, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
