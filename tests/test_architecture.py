"""The import contract: sources -> engine -> checks -> report model (a leaf) -> renderers.

The runtime import graph of the package (imports under ``if TYPE_CHECKING:`` are types only and
left out) is read from the source and held to the layers' allowed imports; it has no cycle; and
only the kinds' own modules know a policy kind by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from audit.engine.kinds import resources

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "audit"

BASE = {"audit", "audit.errors", "audit.fastinit", "audit.forkshare", "audit.gcpause", "audit.inventory", "audit.observed", "audit.serde", "audit.yaml_loader",
        "audit.report.model", "audit.report.severity"}
"""What every layer may import: the package's version, errors, the inventory and flow records, the
report model (a leaf) and small utilities."""

ALLOWED: dict[str, tuple[str, ...]] = {
    # layer (module prefix) -> the other layers it may import, beside BASE and itself
    "audit.report.model": (),
    "audit.report.severity": (),
    "audit.report.fixplan": (),
    "audit.engine": (),
    "audit.sources": ("audit.engine",),  # the kinds' declarations (which resources to read), what documents parse into
    "audit.config": ("audit.engine",),
    "audit.checks": ("audit.engine", "audit.config"),
    "audit.report.build": ("audit.engine", "audit.checks", "audit.config"),
    "audit.render": ("audit.report",),
    "audit.ops": ("audit.report", "audit.render"),
    # the orchestration: the pipeline runs engine and checks into the model; the fix bundle is verified through it
    "audit.pipeline": ("audit.engine", "audit.checks", "audit.config", "audit.report"),
    "audit.remediation": ("audit.engine", "audit.checks", "audit.config", "audit.pipeline", "audit.report"),
    # the library: everything but the command line
    "audit.api": ("audit.engine", "audit.checks", "audit.config", "audit.pipeline", "audit.remediation", "audit.sources",
                  "audit.ops", "audit.render", "audit.report"),
    # the command line: a client of all of it, imported by nothing but the entry point
    "audit.cli": ("audit.engine", "audit.checks", "audit.config", "audit.pipeline", "audit.remediation", "audit.sources",
                  "audit.ops", "audit.render", "audit.report", "audit.api"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The audit modules ``path`` imports at run time (anywhere in it, but not for type checking only)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names if a.name.startswith("audit"))

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.module.startswith("audit"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    return max((prefix for prefix in ALLOWED if module == prefix or module.startswith(prefix + ".")), key=len, default=None)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m)))
def test_each_module_imports_only_what_its_layer_may(module):
    layer = _layer(module)
    assert layer is not None
    allowed = (layer, *ALLOWED[layer])
    wrong = sorted(d for d in GRAPH[module] if d not in BASE and not _within(d, allowed))
    assert not wrong, f"{module} ({layer}) imports {wrong}"


def test_every_module_is_in_a_layer():
    unlayered = sorted(m for m in MODULES if _layer(m) is None and m not in BASE and m not in ("audit", "audit.__main__", "audit.report"))
    assert not unlayered, f"modules in no layer of the contract: {unlayered}"


def test_the_command_line_is_a_thin_client():
    """Nothing but the entry point imports the CLI; its package only wires the app; no command
    (or any function of the CLI) is longer than 80 lines."""
    assert not [m for m, deps in GRAPH.items() if not m.startswith("audit.cli") and m != "audit.__main__"
                and any(d.startswith("audit.cli") for d in deps)]
    wiring = ast.parse(MODULES["audit.cli"].read_text(encoding="utf-8"))
    assert not [n for n in wiring.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    long = []
    for module, path in MODULES.items():
        if module.startswith("audit.cli"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long


def test_the_report_model_is_a_leaf():
    # Beside the severities, only the constructor helper, which imports nothing of the tool.
    assert {d for d in GRAPH["audit.report.model"] if d not in ("audit.report.severity", "audit.fastinit")} == set()
    assert GRAPH["audit.report.severity"] == set()
    assert GRAPH["audit.fastinit"] == set()


def test_renderers_import_no_engine_and_no_check():
    for module, deps in GRAPH.items():
        if module.startswith("audit.render"):
            assert not [d for d in deps if d.startswith(("audit.engine", "audit.checks", "audit.sources"))], module


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(GRAPH.get(module, ())):
            if dep not in GRAPH or dep == module:  # a package importing its own modules
                continue
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_only_the_kinds_know_a_kind_by_name():
    """Outside engine/kinds no module imports a kind's module or writes a policy kind's name as a value
    (prose in docstrings and messages is fine: it is never an exact literal)."""
    core = {"NetworkPolicy"}
    policies = [(k, r) for k, r in resources() if not r.auxiliary]
    names = {r.kind for _, r in policies} | {r.name for _, r in policies} | {k.declaration.name for k, _ in policies}
    names -= core
    for module, path in MODULES.items():
        if module.startswith("audit.engine.kinds"):
            continue
        assert not [d for d in GRAPH[module] if d.startswith("audit.engine.kinds.") and d != "audit.engine.kinds.base"], module
        if module.startswith("audit.engine.cni"):
            continue  # the CNIs' modules name CNIs (Cilium, Calico), never a policy kind
        literals = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names]
        assert not literals, f"{module} names kinds {literals}"
