"""The package's shape (``../shared/DESIGN.md``): no import cycles, no upward imports, thin front ends.

Every import statement counts, at module level or inside a function (a function-level import is a dependency too).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "pairlab"
#: What the tabs (pairlab.ui) and the commands (pairlab.cli) may import from pairlab: the façade, errors, workspace
#: paths, the version, the papers' citations (tabs only), the benchmark runner (cli only), and their own siblings.
FRONT_ENDS = {"pairlab.ui": {"pairlab.lab", "pairlab.errors", "pairlab.workspace", "pairlab", "pairlab.papers"},
              "pairlab.cli": {"pairlab.lab", "pairlab.errors", "pairlab.workspace", "pairlab", "pairlab.bench"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """pairlab module -> the pairlab modules it imports (anywhere in the file)."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_function_level_imports_and_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    g = import_graph()
    assert "pairlab.lab" in g["pairlab.cli.runs"]              # module level
    assert "pairlab.train.jobs" in g["pairlab.train.loop"]     # inside train_command


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_upward_imports():
    """The core (data, models, train, eval, study, demo, experiments, lab) never imports a front end."""
    front = ("pairlab.ui", "pairlab.cli", "pairlab.__main__")
    bad = [f"{m} -> {d}" for m, deps in import_graph().items() if not m.startswith(front)
           for d in deps if d.startswith(front)]
    assert not bad, bad


def test_only_front_ends_call_the_facade():
    """The façade names the core's operations; the core itself never calls it (no cycle through the façade)."""
    front = ("pairlab.ui", "pairlab.cli", "pairlab.__main__", "pairlab.lab")
    bad = [m for m, deps in import_graph().items() if "pairlab.lab" in deps and not m.startswith(front)]
    assert not bad, bad


def test_tabs_and_commands_call_the_facade():
    bad = []
    for m, deps in import_graph().items():
        for front, allowed in FRONT_ENDS.items():
            if m == front or m.startswith(front + "."):
                bad += [f"{m} -> {d}" for d in deps if d not in allowed and not d.startswith(front)]
    assert not bad, "call pairlab.lab instead:\n" + "\n".join(bad)


def test_core_imports_without_gradio_and_the_facade_without_torch():
    code = ("import sys; sys.modules['gradio'] = None\n"
            "import pairlab.lab as lab, pairlab.cli, pairlab.train.run, pairlab.train.jobs, pairlab.data.composition\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "for name in lab._OWNERS: getattr(lab, name)\n"
            "assert 'torch' not in sys.modules, 'a lazy name imported torch'\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_pages_cite_papers_in_plain_words(tmp_path, monkeypatch):
    """Issue 16, finding 5: no page says "paper 000" / "paper 002" (file numbers of ../shared/papers); they name the
    paper and cite it."""
    import json
    import re

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    from pairlab.ui.app import build_app

    text = json.dumps(build_app().config, ensure_ascii=False, default=str)
    assert not re.findall(r"[Pp]aper 00\d", text)
    assert "Implicit Pairs for Boosting Unpaired" in text and "very few pairs" in text
