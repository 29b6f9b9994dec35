"""House rules that keep the one-way data flow (pages -> components -> backends -> models).

The import rules are read from the source with `ast`, so they hold for imports inside
functions too (a lazy import that closes a circle is still a circle).
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("backends", "components", "app_pages")
CORE = ("core", "models")  # backends/core knows nothing above it; backends/models knows only core
MAX_LINES = 400


def _py(folder):
    return sorted((ROOT / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for folder in FOLDERS for p in _py(folder)}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = _modules()[module].name == "__init__.py"
    base = package[: len(package) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in a module, at any depth."""
    found = []
    tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                found.append((target, alias.name, node.lineno))
    return found


def _edges(module: str) -> set[str]:
    """Our modules that `module` imports (a name that is itself a submodule counts as that module)."""
    mods = _modules()
    out = set()
    for target, name, _ in _imports(module):
        if name and f"{target}.{name}" in mods:
            out.add(f"{target}.{name}")
        elif target in mods:
            out.add(target)
    out.discard(module)
    return out


def _circles() -> list[list[str]]:
    """Strongly connected components of the import graph with more than one module (Tarjan)."""
    graph = {m: sorted(_edges(m)) for m in _modules()}
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in graph:
        if m not in index:
            visit(m)
    return found


def _topic(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "backends" and len(parts) > 1 else None


def test_no_import_circles():
    assert _circles() == []


def test_the_circle_finder_finds_circles(tmp_path, monkeypatch):
    # The check above can fail: a two-module circle written to a scratch tree is found.
    (tmp_path / "backends" / "x").mkdir(parents=True)
    (tmp_path / "backends" / "x" / "a.py").write_text("def f():\n    from backends.x.b import g\n")
    (tmp_path / "backends" / "x" / "b.py").write_text("from backends.x import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "FOLDERS", ("backends",))
    _modules.cache_clear()
    _imports.cache_clear()
    try:
        assert _circles() == [["backends.x.a", "backends.x.b"]]
    finally:
        _modules.cache_clear()
        _imports.cache_clear()


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for module in _modules():
        for target, name, line in _imports(module):
            ours = target.split(".")[0] in FOLDERS
            if ours and name and name.startswith("_") and not name.startswith("__"):
                offenders.append(f"{module}:{line} imports {name} from {target}")
        # module._private through an imported module alias (`from backends import attention as att`)
        tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _resolve(module, node).split(".")[0] in FOLDERS:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offenders.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert offenders == []


def test_every_backend_topic_is_a_package():
    loose = [p.name for p in (ROOT / "backends").glob("*.py") if p.name != "__init__.py"]
    assert loose == []


def test_the_core_knows_no_topic_and_topics_use_each_other_only_through_their_package():
    offenders = []
    for module in _modules():
        mine = _topic(module)
        if mine is None:
            continue
        for target in _edges(module):
            theirs = _topic(target)
            if theirs is None or theirs == mine:
                continue
            if mine == "core" and theirs != "core":
                offenders.append(f"{module} (core) imports {target}")
            elif mine == "models" and theirs not in CORE:
                offenders.append(f"{module} (models) imports the topic module {target}")
            elif mine not in CORE and theirs not in CORE and target != f"backends.{theirs}":
                offenders.append(f"{module} imports {target}, an internal module of another topic")
    assert offenders == []


def test_backends_never_import_streamlit():
    offenders = [
        f"{m}:{line}"
        for m in _modules()
        if m.startswith("backends")
        for target, _, line in _imports(m)
        if target.split(".")[0] == "streamlit"
    ]
    assert offenders == []


def test_no_source_file_is_too_long_to_take_in_at_once():
    long = {
        str(p.relative_to(ROOT)): n
        for folder in FOLDERS
        for p in _py(folder)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_pages_and_components_never_load_models_themselves():
    pattern = re.compile(r"from_pretrained\(|SentenceTransformer\(|open_clip\.create_model")
    offenders = [p.name for p in _py("app_pages") + _py("components") if pattern.search(p.read_text())]
    assert offenders == []


def test_no_legacy_pages_directory():
    # A folder named pages/ next to app.py switches Streamlit into its old
    # multipage mode for the first run of a process, bypassing st.navigation
    # and the sidebar: page scripts live in app_pages/ instead.
    assert not (ROOT / "pages").exists()


def test_trust_remote_code_is_never_switched_on_silently():
    hits = [p.name for p in _py("backends") if re.search(r"trust_remote_code\s*=\s*True", p.read_text())]
    assert hits == []


VALUE_WIDGETS = {
    "radio",
    "selectbox",
    "multiselect",
    "slider",
    "select_slider",
    "number_input",
    "text_input",
    "text_area",
    "toggle",
    "checkbox",
    "color_picker",
    "date_input",
    "time_input",
    "segmented_control",
    "pills",
}


def test_every_keyed_widget_keeps_its_value_for_the_session():
    """Tabs are lazy and Streamlit forgets a widget it did not draw in a run: without
    `persist_state="session"` a setting made in one tab was lost after a visit to another tab
    (tests/pages/test_lora_page.py shows it). Any keyed value widget must persist."""
    missing = []
    for path in _py("app_pages") + _py("components"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in VALUE_WIDGETS:
                kws = {k.arg: k.value for k in node.keywords}
                persist = kws.get("persist_state")
                if "key" in kws and not (isinstance(persist, ast.Constant) and persist.value == "session"):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert missing == []
