"""A Hugging Face cache seeded with tiny random CLIP and BLIP models, and what the vision page defaults to.

`make space-check` and tests/backends/test_vision_cached.py use it to prove, without the network,
that the vision page runs real CLIP / BLIP when the local Hugging Face cache holds them (as the
Space's image does) and ConSE / the tiny VQA when it does not:
- `seed_hf_cache(hf_home)` builds a CLIPModel, a BlipForConditionalGeneration and a
  BlipForQuestionAnswering of a few thousand parameters (width 32, 2 layers, 8-pixel patches on
  32 x 32 images; tokenizers from vocabularies written here, nothing downloaded), saves each with its
  processor as safetensors, and installs them under the project's default ids in huggingface_hub's
  layout: `hub/models--org--name/{blobs/<sha256>, snapshots/<40-hex commit>/<file> -> blob, refs/main}`;
- `page_defaults(hf_home)` runs the app in Streamlit's AppTest in a fresh Python whose HF_HOME is
  that folder (huggingface_hub reads it at import) and reports what the vision page chose: the
  method, the CLIP id, the VQA mode, the BLIP ids, and the captions it shows.
The models are random: this checks the switch and the plumbing, not quality.

The real models of the Space's image are downloaded by `fetch_space_models` (FETCH: ids and commits).

Usage: .venv/bin/python scripts/space_seed.py HF_HOME [--page]   (seeds; --page then prints the page's defaults)
       python scripts/space_seed.py --fetch                      (the Dockerfile: the real models, network)
"""

from __future__ import annotations

import hashlib
import json
import os
import string
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORDS = ["a", "photo", "of", "the", "cat", "dog", "car", "coffee", "cup", "is", "what", "color", "shape", "red"]
TOWER = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
VISION = {"image_size": 32, "patch_size": 8, **TOWER}
MARK = "page-defaults: "
# The real models the Space's image downloads at build time (`python scripts/space_seed.py --fetch`, run by
# the Dockerfile on its own: this file imports nothing of the app at module level), pinned by commit.
# None of these commits could be checked from here (no network): see fetch_space_models.
FETCH = (
    # transformers' zero-shot-image-classification pipeline default ("3d74acf"); the full id as
    # several public projects pin it.
    ("openai/clip-vit-base-patch32", "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"),
    # The large captioner, not the base one: public snapshots of the base repo's main
    # (82a37760796d32b1411fe092ab5d4e227313294b) hold pytorch_model.bin, its safetensors sit in a PR branch.
    ("Salesforce/blip-image-captioning-large", "353689b859fcf0523410b1806dace5fb46ecdf41"),
    ("Salesforce/blip-vqa-base", "787b3d35d57e49572baabd22884b3d5a05acf072"),
)
ALLOW = ["*.safetensors", "*.safetensors.index.json", "*.json", "*.txt"]


def build_tiny_clip(folder: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    letters = list(string.ascii_lowercase) + [c + "</w>" for c in string.ascii_lowercase]
    vocab = {tok: i for i, tok in enumerate(["<|startoftext|>", "<|endoftext|>", ".", ".</w>", *letters])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    text = {"vocab_size": len(tokenizer), "max_position_embeddings": 64, **TOWER}
    text.update(bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=16)).save_pretrained(folder)
    image = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_tiny_blip(folder: Path, vqa: bool = False) -> Path:
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *WORDS])}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    text = {"vocab_size": len(vocab), "encoder_hidden_size": 32, "max_position_embeddings": 64, **TOWER}
    text.update(bos_token_id=vocab["[DEC]"], pad_token_id=0, sep_token_id=vocab["[SEP]"], eos_token_id=vocab["[SEP]"])
    torch.manual_seed(0)
    cls = BlipForQuestionAnswering if vqa else BlipForConditionalGeneration
    cls(BlipConfig(text_config=text, vision_config=VISION, projection_dim=16)).save_pretrained(folder)
    image = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def install_in_cache(folder: Path, hub_cache: Path, repo_id: str) -> Path:
    """Copy a saved model folder into huggingface_hub's cache layout under `repo_id`; its snapshot folder."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha1(repo_id.encode())
    for path in files:
        digest.update(path.read_bytes())
    revision = digest.hexdigest()  # 40 hex digits, as a git commit id
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    for path in files:
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def seed_hf_cache(hf_home: str | Path) -> dict[str, str]:
    """Tiny random CLIP, BLIP captioner and BLIP VQA under the vision page's default ids; id -> snapshot."""
    from backends.vision.cached_models import DEFAULTS

    hub = Path(hf_home) / "hub"
    hub.mkdir(parents=True, exist_ok=True)
    out = {}
    with tempfile.TemporaryDirectory(prefix="tiny-vision-") as tmp:
        builds = {
            "clip": lambda f: build_tiny_clip(f),
            "blip-caption": lambda f: build_tiny_blip(f),
            "blip-vqa": lambda f: build_tiny_blip(f, vqa=True),
        }
        for kind, build in builds.items():
            folder = build(Path(tmp) / kind)
            out[DEFAULTS[kind]] = str(install_in_cache(folder, hub, DEFAULTS[kind]))
    return out


def fetch_space_models(models=FETCH) -> None:
    """Download each (repo, commit) into the Hugging Face cache (HF_HOME): safetensors and json/txt only.

    Fails loudly when a commit has no safetensors weights (the pickles are never downloaded), then
    points `refs/main` at the commit: `resolve` and the vision page read `main`, and snapshot_download
    writes no ref when given a commit id.
    """
    from huggingface_hub import snapshot_download

    for repo_id, revision in models:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=ALLOW))
        weights = sorted(p.name for p in folder.glob("*.safetensors"))
        if not weights or not (folder / "config.json").is_file():
            raise SystemExit(
                f"{repo_id}@{revision} has no safetensors weights or no config.json ({sorted(os.listdir(folder))}): "
                "pick a commit that has model.safetensors (the hub page's file list, or a refs/pr/N branch)."
            )
        ref = folder.parent.parent / "refs" / "main"
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(revision)
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20
        print(f"{repo_id}@{revision[:10]}: {', '.join(weights)}, {size:.0f} MB in {folder}", flush=True)


def _report_page() -> dict:
    """In this process (HF_HOME already set): the vision page's choices on its first tab, then on VQA."""
    from streamlit.testing.v1 import AppTest

    from components.i18n import strings
    from components.page_registry import PAGES

    english = strings("en")
    vision = next(p for p in PAGES if p.key == "vision")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page(vision.path).run()
    first = {
        "method": at.radio(key="vision.method").value,
        "clip": at.text_input(key="vision.clip_name").value if at.session_state["vision.method"] == "clip" else None,
        "captions": [c.value for c in at.caption],
        "errors": [e.value for e in at.error] + [e.value for e in at.exception],
    }
    at.session_state["vision.tab"] = english["vision.tab.vqa"]
    at.run()
    mode = at.radio(key="vision.vqa.mode").value
    vqa = {
        "vqa_mode": mode,
        "captioner": at.text_input(key="vision.blip.captioner").value if mode == "blip" else None,
        "vqa": at.text_input(key="vision.blip.vqa").value if mode == "blip" else None,
        "vqa_captions": [c.value for c in at.caption],
        "vqa_errors": [e.value for e in at.error] + [e.value for e in at.exception],
        "captions_table": len(at.dataframe),
    }
    return {**first, **vqa}


def page_defaults(hf_home: str | Path, timeout: float = 400, env: dict | None = None) -> dict:
    """What the vision page defaults to with this HF_HOME, from a fresh offline Python (AppTest); `env`
    adds to this process's environment (LLMPG_CACHE_DIR: where the app writes)."""
    env = dict(os.environ, **(env or {}), HF_HOME=str(hf_home), HF_HUB_CACHE=str(Path(hf_home) / "hub"))
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, __file__, "--report-page"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        output = proc.stdout[-2000:] + proc.stderr[-3000:]
        raise RuntimeError(f"the vision page check failed ({proc.returncode}):\n{output}")
    return json.loads(lines[-1].removeprefix(MARK))


if __name__ == "__main__":
    if sys.argv[1:] == ["--report-page"]:
        print(MARK + json.dumps(_report_page()), flush=True)
    elif sys.argv[1:] == ["--fetch"]:
        fetch_space_models()
    elif sys.argv[1:2] and not sys.argv[1].startswith("-"):
        print(json.dumps(seed_hf_cache(sys.argv[1]), indent=1))
        if "--page" in sys.argv:
            print(json.dumps(page_defaults(sys.argv[1]), indent=1, ensure_ascii=False))
    else:
        raise SystemExit(__doc__)
