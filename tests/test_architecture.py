"""The house plan, checked: no import cycles between the project's modules.

Imports are read from the source (every ``import`` and ``from ... import``, including the ones
inside functions, since a late import is still a dependency), so the check needs no import side
effects and fails on a cycle however it is hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("postmortem", "ingest", "replay", "reports", "devchain")


def _module_name(path: Path) -> str:
    """The module's name in the one installed namespace: ``ingest/rpc.py`` is ``postmortem.ingest.rpc``."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] != "postmortem":
        parts.insert(0, "postmortem")
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a submodule import counts for that submodule)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                # the longest project module that the dotted name starts with
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            # a package's __init__ importing its own submodules is how packages re-export; the
            # submodule importing a sibling through the package is what would make it a cycle
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_late_imports():
    # A function-level import is a dependency too: the checker must see it, or it cannot fail.
    g = import_graph()
    assert "postmortem.ingest.decode" in g["postmortem.ingest.pipeline"] or any(m.startswith("ingest.") for m in g["postmortem.ingest.pipeline"])
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (break each by moving the shared piece down a layer): " + "; ".join(
        " <-> ".join(c) for c in cycles)


# The house plan (../shared/design/architecture.md): each layer imports only from the layers below
# it; a stage never imports another stage. The protocol layer holds what is Aave's own (its exact
# math and its event catalogue), which every stage may use.
STAGES = ("ingest", "replay", "reports", "devchain")
PROTOCOL = ("postmortem.replay.aave_math", "postmortem.ingest.events",
            "postmortem.replay.compound_v2", "postmortem.ingest.compound_events")
FOUNDATION, PROTOCOLS, STAGE, PIPELINE, CLI = range(5)


def layer_of(module: str) -> tuple[int, str | None]:
    """(layer, stage name for stage modules)."""
    if module == "postmortem.cli" or module.startswith("postmortem.cli_"):
        return CLI, None
    if module == "postmortem.pipeline":
        return PIPELINE, None
    if any(module == p or module.startswith(p + ".") for p in PROTOCOL):
        return PROTOCOLS, None
    for stage in STAGES:
        if module == f"postmortem.{stage}" or module.startswith(f"postmortem.{stage}."):
            return STAGE, stage
    return FOUNDATION, None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        lm, sm = layer_of(mod)
        for dep in sorted(deps):
            ld, sd = layer_of(dep)
            if ld > lm or (ld == lm == STAGE and sm != sd):
                bad.append(f"{mod} -> {dep}")
    return bad


def test_layer_contract_can_fail():
    assert layer_violations({"postmortem.warehouse": {"postmortem.ingest.rpc"}}) == \
        ["postmortem.warehouse -> postmortem.ingest.rpc"]
    assert layer_violations({"postmortem.replay.engine": {"postmortem.ingest.rpc"}}) == \
        ["postmortem.replay.engine -> postmortem.ingest.rpc"]
    assert layer_violations({"postmortem.reports.model": {"postmortem.cli"}}) == \
        ["postmortem.reports.model -> postmortem.cli"]
    assert layer_violations({"postmortem.pipeline": {"postmortem.replay.engine", "postmortem.warehouse"}}) == []


def test_layers_point_one_way():
    bad = layer_violations(import_graph())
    assert not bad, "imports against the layers (foundation <- protocols <- stages <- pipeline <- CLI): " + "; ".join(bad)


def test_every_import_uses_the_postmortem_namespace():
    # The wheel installs one namespace: `import ingest` works only from a checkout, never installed.
    bad = []
    for path in sorted(p for d in (*PACKAGES, "tests", "benchmarks") for p in (REPO / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in STAGES]
    assert not bad, "import these as postmortem.<stage>...: " + "; ".join(bad)
