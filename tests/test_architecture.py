"""The house's floors, checked by walking imports with `ast` (no code is run).

UI (app.py, app_pages/, ui/) and CLI (recsys/cli/) -> use cases (recsys/usecases/) -> domain
(the rest of recsys) -> store (recsys/store/, the only module that speaks SQL). The same checks
as `python3 ../shared/tools/floors.py`, plus the direction of the arrows between floors.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "recsys"


SQL = re.compile(r"""["'](\s*)(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WITH)\s""")


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def recsys_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, name: str) -> set[str]:
    """Every module `path` imports (at any depth: inside functions and TYPE_CHECKING too),
    with `from pkg import name` counted as both pkg and pkg.name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return out


def internal_graph() -> dict[str, set[str]]:
    mods = recsys_modules()
    return {m: {d for d in imports(p, m) if d in mods and d != m} for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def ui_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "app_pages").rglob("*.py")),
            *sorted((ROOT / "ui").rglob("*.py"))]


def floor(module: str) -> str:
    if module.startswith("recsys.cli") or module == "recsys.__main__":
        return "cli"
    if module.startswith("recsys.usecases"):
        return "usecases"
    if module == "recsys.store" or module.startswith("recsys.store."):
        return "store"
    return "domain"


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_recsys():
    found = cycles(internal_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_no_sql_outside_the_store():
    files = list(PACKAGE.rglob("*.py")) + ui_files()
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if not p.is_relative_to(PACKAGE / "store") and SQL.search(p.read_text())]
    assert not offenders, offenders


def test_arrows_point_down():
    """Domain modules never import the use cases or the CLI; use cases never import the CLI;
    the store imports nothing of recsys but config and errors."""
    graph = internal_graph()
    wrong = []
    for module, deps in graph.items():
        for dep in deps:
            if floor(module) == "domain" and floor(dep) in ("usecases", "cli"):
                wrong.append(f"{module} -> {dep}")
            if floor(module) == "usecases" and floor(dep) == "cli":
                wrong.append(f"{module} -> {dep}")
    store_deps = {d for m, deps in graph.items() if floor(m) == "store"
                  for d in deps if floor(d) != "store" and d != "recsys"}
    assert store_deps <= {"recsys.core", "recsys.core.config", "recsys.core.errors"}, store_deps
    assert not wrong, wrong


def package(module: str) -> str:
    """`recsys.search.vector_index` -> `search`; the top-level `recsys` -> ``."""
    return module.split(".")[1] if module.count(".") else ""


DOMAIN = {"core", "store", "data", "vectors", "encoders", "search", "models", "recommend",
          "evaluation", "explain", "simulation", "explore", "demo"}

# The packages each domain package never imports (beyond the floors above), derived from the
# code: what a package is for says what it has no business knowing.
NEVER = {
    "core": DOMAIN - {"core"},                       # the base: config, errors, files, budgets
    "store": DOMAIN - {"core", "store"},             # SQL only, below every domain module
    "data": {"search", "recommend", "evaluation", "explain", "models", "simulation", "explore",
             "demo"},                                # reading and importing data
    "encoders": {"vectors", "search", "models", "recommend", "evaluation", "explain",
                 "simulation", "explore", "demo"},   # photos and texts to vectors
    "vectors": {"search", "models", "recommend", "evaluation", "explain", "simulation",
                "explore", "demo"},                  # item vectors as data
    "search": {"models", "recommend", "evaluation", "explain", "simulation", "explore",
               "demo"},                              # answering queries from vectors
    "models": {"store", "search", "recommend", "simulation", "explain", "explore", "demo",
               "encoders"},                          # fit and score on InteractionData
    "recommend": {"search", "simulation", "explore", "demo"},
    "evaluation": {"search", "simulation", "explain", "explore", "demo", "encoders"},
    "explain": {"store", "search", "recommend", "evaluation", "simulation", "explore", "demo",
                "encoders"},                         # explanations from a model and its data
    "simulation": {"search", "models", "recommend", "explain", "explore", "encoders"},
    "explore": DOMAIN - {"core", "explore"},         # projection of given vectors
    "demo": {"search", "models", "recommend", "evaluation", "explain", "explore", "vectors"},
}
# Modules the models may use from evaluation: the metrics (never the full-ranking evaluation,
# which fits and scores models).
MODELS_FROM_EVALUATION = {"recsys.evaluation.metrics"}


def test_packages_import_only_what_their_job_needs():
    """Package-level arrows: e.g. search never imports evaluation; models never import the
    use cases, training or the full-ranking evaluation; the store imports only core; core
    imports nothing of recsys outside core; data never imports search, recommend, evaluation or
    explain; evaluation never imports search; encoders never import recommend or evaluation."""
    assert set(NEVER) == DOMAIN, "every domain package states what it never imports"
    wrong = []
    for module, deps in internal_graph().items():
        own = package(module)
        for dep in deps:
            if package(dep) in NEVER.get(own, ()):
                wrong.append(f"{module} -> {dep}")
            if own == "models" and package(dep) == "evaluation" and \
                    dep not in MODELS_FROM_EVALUATION | {"recsys.evaluation"}:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "arrows a package must not have:\n" + "\n".join(sorted(wrong))


def test_the_package_rule_finds_a_wrong_arrow(monkeypatch):
    """The check itself: an arrow from search to evaluation is reported."""
    graph = internal_graph()
    graph["recsys.search.facets"] = graph["recsys.search.facets"] | {"recsys.evaluation.stats"}
    monkeypatch.setattr(sys.modules[__name__], "internal_graph", lambda: graph)
    with pytest.raises(AssertionError, match="recsys.search.facets -> recsys.evaluation.stats"):
        test_packages_import_only_what_their_job_needs()


def test_recsys_never_imports_streamlit_and_the_ui_never_imports_the_cli():
    for name, path in recsys_modules().items():
        assert not any(d == "streamlit" or d.startswith("streamlit.")
                       for d in imports(path, name)), name
    for path in ui_files():
        name = module_name(path)
        assert not any(d.startswith("recsys.cli") for d in imports(path, name)), path


def test_importing_the_use_cases_is_cheap():
    """The use-case package loads its submodules (and torch behind them) on first use."""
    code = ("import sys, recsys.usecases as u; u.default_image_weight; "
            "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'streamlit') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
