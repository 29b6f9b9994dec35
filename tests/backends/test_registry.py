import shutil
import time
from pathlib import Path

import pytest
from huggingface_hub import constants

from backends.models import registry
from backends.models.registry import MINILM, SMOLLM2, ModelNotAvailable, find_spec, package_folder, resolve


def test_known_model_aliases_resolve_to_the_embedded_package():
    for name in ("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct"):
        resolved = resolve(name, online=False)
        assert resolved.source == "package"
        assert resolved.spec is SMOLLM2
        assert (Path(resolved.location) / SMOLLM2.gguf_file).is_file()
    minilm = resolve("sentence-transformers/all-MiniLM-L6-v2", online=False)
    assert minilm.source == "package" and minilm.key == "all-minilm-l6-v2"
    assert (Path(minilm.location) / "model.safetensors").is_file()


def test_a_local_folder_wins_over_everything(tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(package_folder(MINILM), folder)
    resolved = resolve(str(folder), online=False)
    assert resolved.source == "local-path"
    assert resolved.location == str(folder.resolve())


def test_folder_without_config_is_refused_with_its_name(tmp_path):
    with pytest.raises(ModelNotAvailable, match="no config.json"):
        resolve(str(tmp_path), online=False)
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        resolve("./no/such/folder", online=False)


def _fake_hf_cache(root: Path, hub_id: str, files_from: Path) -> Path:
    repo = root / ("models--" + hub_id.replace("/", "--"))
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    shutil.copytree(files_from, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_the_hf_cache_comes_before_the_package(tmp_path, monkeypatch):
    snapshot = _fake_hf_cache(tmp_path, MINILM.hub_id, package_folder(MINILM))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    resolved = resolve("all-minilm-l6-v2", online=False)
    assert resolved.source == "hf-cache"
    assert Path(resolved.location) == snapshot


def test_hub_only_id_offline_fails_fast_and_names_the_alternatives(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # A closed local port stands in for "no network": the probe must give up at once.
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1")
    monkeypatch.setattr(registry, "_online_cache", None)
    started = time.monotonic()
    with pytest.raises(ModelNotAvailable) as info:
        resolve("openai-community/gpt2")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "openai-community/gpt2" in message and "not available offline" in message
    assert SMOLLM2.hub_id in message and MINILM.hub_id in message


def test_hf_hub_offline_skips_the_network_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(registry.socket, "create_connection", lambda *a, **k: pytest.fail("probed the network"))
    assert registry.is_online() is False


def test_online_any_hub_id_resolves_to_the_hub():
    resolved = resolve("Qwen/Qwen2.5-0.5B-Instruct", online=True)
    assert (resolved.source, resolved.location, resolved.spec) == ("hub", "Qwen/Qwen2.5-0.5B-Instruct", None)


@pytest.mark.parametrize("bad", ["", "   ", "not a model!!", "a/b/c/d e"])
def test_malformed_names_get_a_clear_message(bad):
    with pytest.raises(ModelNotAvailable):
        resolve(bad, online=True)


def test_find_spec_is_case_insensitive():
    assert find_spec("huggingfacetb/smollm2-135m-instruct") is SMOLLM2
    assert find_spec("gpt2") is None
