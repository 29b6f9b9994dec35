"""Every uploader is drawn through components.builtin_text.file_uploader, which writes Streamlit's
English limit line ("200MB per file • JSON") in the page's language; a direct `st.file_uploader` (or
`column.file_uploader`) shows it in English on a Chinese page."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {ROOT / "components" / "builtin_text.py"}


def _direct_calls() -> list[str]:
    found = []
    sources = [ROOT / "app.py", *(ROOT / "app_pages").rglob("*.py"), *(ROOT / "components").rglob("*.py")]
    for path in sources:
        if path in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "file_uploader":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_page_or_component_draws_streamlits_uploader_directly():
    assert _direct_calls() == []
