"""House rules that keep the one-way data flow (pages -> components -> backends -> models)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _py(folder):
    return sorted((ROOT / folder).rglob("*.py"))


def test_backends_never_import_streamlit():
    offenders = [p.name for p in _py("backends") if re.search(r"^\s*(import|from) streamlit", p.read_text(), re.M)]
    assert offenders == []


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
