"""Real CLIP / BLIP found in the local Hugging Face cache, and the vision page defaulting to them.

The cache is seeded with tiny random models (scripts/space_seed.py, the same seeding `make
space-check` uses) in temporary HF_HOME folders, never the user's ~/.cache/huggingface: the
finder is given the folder, and the page runs in a fresh Python whose HF_HOME is that folder.
huggingface_hub's own `scan_cache_dir` is the independent reading of the layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir

from backends.vision import DEFAULT_CAPTIONER, DEFAULT_CLIP, DEFAULT_VQA, cached_vision_models, preferred
from backends.vision.cached_models import LICENCES, inspect_repo
from components.i18n import strings
from scripts.space_seed import FETCH, build_tiny_clip, install_in_cache, page_defaults, seed_hf_cache

EN = strings("en")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    return home, seed_hf_cache(home)


def test_the_finder_reads_the_seeded_repos_as_huggingface_hub_does(seeded):
    home, snapshots = seeded
    found = cached_vision_models(home / "hub")
    assert [(m.repo_id, m.kind) for m in found] == [
        (DEFAULT_CLIP, "clip"),
        (DEFAULT_CAPTIONER, "blip-caption"),
        (DEFAULT_VQA, "blip-vqa"),
    ]
    scanned = {repo.repo_id: repo for repo in scan_cache_dir(home / "hub").repos}
    for model in found:
        assert model.folder == snapshots[model.repo_id]
        assert model.revision == scanned[model.repo_id].refs["main"].commit_hash
        assert len(model.revision) == 40
        assert (Path(model.folder) / "model.safetensors").resolve().is_file()
    assert preferred("clip", home / "hub").repo_id == DEFAULT_CLIP
    with pytest.raises(ValueError, match="kind"):
        preferred("gpt", home / "hub")


def test_pickles_broken_downloads_and_other_kinds_are_skipped_and_defaults_come_first(seeded, tmp_path):
    home, _ = seeded
    hub = tmp_path / "hub"
    shutil.copytree(home / "hub", hub, symlinks=True)
    # a CLIP with only pytorch_model.bin: a pickle, never loaded
    pickled = tmp_path / "pickled"
    build_tiny_clip(pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    install_in_cache(pickled, hub, "someone/clip-pickled")
    # an interrupted download: the weights' link points at a blob that is not there
    broken = install_in_cache(build_tiny_clip(tmp_path / "broken"), hub, "someone/clip-broken")
    blob = (broken / "model.safetensors").resolve()
    blob.unlink()
    # a text model: not a vision kind
    text = tmp_path / "text"
    text.mkdir()
    (text / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (text / "model.safetensors").write_bytes(b"{}")
    (text / "preprocessor_config.json").write_text("{}")
    install_in_cache(text, hub, "someone/bert")
    # another usable CLIP, named before the default alphabetically: still after it
    install_in_cache(build_tiny_clip(tmp_path / "other"), hub, "aaa/clip-other")
    clips = [m.repo_id for m in cached_vision_models(hub) if m.kind == "clip"]
    assert clips == [DEFAULT_CLIP, "aaa/clip-other"]
    assert inspect_repo(hub / "models--someone--clip-pickled") is None
    assert inspect_repo(hub / "models--someone--clip-broken") is None
    assert inspect_repo(hub / "models--someone--bert") is None
    # the answer is remembered, and follows the cache: the default removed, the other one leads
    shutil.rmtree(hub / "models--openai--clip-vit-base-patch32")
    assert preferred("clip", hub).repo_id == "aaa/clip-other"
    assert cached_vision_models(tmp_path / "absent") == ()


def test_the_vision_page_defaults_to_the_cached_models_and_names_them(seeded):
    home, _ = seeded
    chosen = page_defaults(home)
    assert chosen["errors"] == [] and chosen["vqa_errors"] == []
    assert (chosen["method"], chosen["clip"]) == ("clip", DEFAULT_CLIP)
    assert EN["vision.cached.clip"].format(model=DEFAULT_CLIP) in chosen["captions"]
    assert (chosen["vqa_mode"], chosen["captioner"], chosen["vqa"]) == ("blip", DEFAULT_CAPTIONER, DEFAULT_VQA)
    assert EN["vision.cached.captioner"].format(model=DEFAULT_CAPTIONER) in chosen["vqa_captions"]
    assert EN["vision.cached.vqa"].format(model=DEFAULT_VQA) in chosen["vqa_captions"]
    assert chosen["captions_table"] == 1  # the three decoding strategies' captions, from the tiny captioner


def test_an_empty_cache_keeps_conse_and_the_tiny_vqa(tmp_path):
    chosen = page_defaults(tmp_path / "empty_hf_home")
    assert chosen["errors"] == []
    assert (chosen["method"], chosen["clip"]) == ("conse", None)
    assert EN["vision.conse.running"] in chosen["captions"]
    assert (chosen["vqa_mode"], chosen["captioner"]) == ("tiny", None)
    assert not any("Hugging Face cache" in c for c in chosen["captions"] + chosen["vqa_captions"])


def test_the_space_image_models_are_pinned_commits_with_their_licences_named_on_home():
    assert {repo for repo, _ in FETCH} <= set(LICENCES)
    assert all(len(rev) == 40 and int(rev, 16) >= 0 for _, rev in FETCH)
    assert LICENCES["openai/clip-vit-base-patch32"] == "MIT"
    assert {LICENCES[repo] for repo, _ in FETCH if repo.startswith("Salesforce/")} == {"BSD-3-Clause"}


def test_home_names_the_real_vision_models_and_their_licences():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120).run()
    line = next(c.value for c in at.caption if "Hugging Face cache" in c.value)
    for repo, licence in LICENCES.items():
        assert f"{repo} ({licence})" in line
