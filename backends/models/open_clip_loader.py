"""open_clip models (`open_clip_torch`) in the shared cache, behind the interface of a transformers dual encoder.

A name starts with `open_clip:` and takes one of three forms:
  open_clip:ViT-B-32/laion2b_s34b_b79k              an architecture and a pretrained tag (its hub repo)
  open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K   a hub repo in open_clip's layout
  open_clip:/path/to/folder                         a folder in that layout
open_clip's layout is `open_clip_config.json` + `open_clip_model.safetensors`. Only that safetensors
file is ever loaded (never `open_clip_pytorch_model.bin` or a TorchScript .pt: those are pickles).
Hub files are fetched into the Hugging Face cache when online, and read from it when offline.

The cached model is an `OpenClipDualEncoder`, an nn.Module holding the open_clip model as `.clip`
and answering `get_image_features` / `get_text_features` / `logit_scale` like transformers' CLIPModel,
so the vision page's CLIP code (zero-shot, search, Grad-CAM) runs on it unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backends.core.build_lock import MODEL_BUILD
from backends.models.loaders import DTYPES, CacheKey, LoadedModel, model_nbytes
from backends.models.registry import ModelNotAvailable, is_online

PREFIX = "open_clip:"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
PICKLES = ("*.bin", "*.pt", "*.pth")


def is_open_clip_name(name: str) -> bool:
    return name.strip().startswith(PREFIX)


@dataclass(frozen=True)
class ImageFeatures:
    """What transformers' get_image_features returns: the projected embedding, and the tokens per block."""

    pooler_output: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


class OpenClipDualEncoder(torch.nn.Module):
    """An open_clip CLIP with the methods the vision page calls on a transformers CLIPModel."""

    def __init__(self, clip: torch.nn.Module):
        super().__init__()
        self.clip = clip

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.clip.encode_text(input_ids)

    def get_image_features(self, pixel_values: torch.Tensor, output_hidden_states: bool = False) -> ImageFeatures:
        if not output_hidden_states:
            return ImageFeatures(self.clip.encode_image(pixel_values))
        # The tokens before and after each block, in the graph (Grad-CAM differentiates with respect to them):
        # the same steps as open_clip's VisionTransformer.forward.
        visual = self.clip.visual
        blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
        if blocks is None or not hasattr(visual, "_embeds") or not visual.transformer.batch_first:
            raise ValueError(
                f"This open_clip image tower ({type(visual).__name__}) is not a ViT: "
                "its tokens per block are not available."
            )
        x = visual._embeds(pixel_values)
        states = [x]
        for block in blocks:
            x = block(x)
            states.append(x)
        pooled, _ = visual._pool(x)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        return ImageFeatures(pooled, tuple(states))


@dataclass(frozen=True)
class OpenClipProcessor:
    """open_clip's image transform and tokenizer, called like a transformers processor."""

    preprocess: Any
    tokenizer: Any

    def images(self, images) -> torch.Tensor:
        return torch.stack([self.preprocess(image.convert("RGB")) for image in images])

    def texts(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(list(texts))


def _offline_message(name: str, what: str) -> str:
    return (
        f"{name!r}: open_clip weights need the network ({what} is not in the local Hugging Face cache and "
        "the hub cannot be reached) or a local folder holding open_clip_config.json + "
        f"open_clip_model.safetensors: type `{PREFIX}/path/to/folder`."
    )


def check_folder(folder: Path, name: str) -> Path:
    """A folder in open_clip's layout with safetensors weights; pickled weights are refused."""
    if not (folder / WEIGHTS_FILE).is_file():
        pickles = sorted(p.name for pattern in PICKLES for p in folder.glob(pattern))
        if pickles:
            raise ModelNotAvailable(
                f"{name!r} holds only pickled weights ({', '.join(pickles)}); they are never "
                f"loaded (a pickle can run code). Convert them to {WEIGHTS_FILE}."
            )
        raise ModelNotAvailable(
            f"{name!r} has no {WEIGHTS_FILE}: an open_clip folder holds {CONFIG_FILE} + {WEIGHTS_FILE}."
        )
    if not (folder / CONFIG_FILE).is_file():
        raise ModelNotAvailable(
            f"{name!r} has no {CONFIG_FILE}: an open_clip folder holds {CONFIG_FILE} + {WEIGHTS_FILE}."
        )
    return folder


def _hub_folder(repo: str, name: str) -> tuple[Path, str]:
    """The repo's config and safetensors weights in the Hugging Face cache (fetched when online)."""
    from huggingface_hub import hf_hub_download

    online = is_online()
    try:
        paths = [Path(hf_hub_download(repo, f, local_files_only=not online)) for f in (CONFIG_FILE, WEIGHTS_FILE)]
    except Exception as exc:  # offline misses, missing files, bad ids: huggingface_hub raises several kinds
        if not online:
            raise ModelNotAvailable(_offline_message(name, f"the hub repo {repo!r}")) from exc
        raise ModelNotAvailable(
            f"{name!r}: could not fetch {CONFIG_FILE} and {WEIGHTS_FILE} from the hub repo "
            f"{repo!r} ({type(exc).__name__}: {exc}). Only safetensors weights are loaded."
        ) from exc
    return paths[1].parent, "hf-cache" if not online else "hub"


def _tag_repo(spec: str, name: str) -> str:
    """`ARCH/TAG` -> the hub repo open_clip lists for that pretrained tag."""
    import open_clip

    arch, _, tag = spec.partition("/")
    if not arch or not tag:
        raise ModelNotAvailable(
            f"{name!r} is not an open_clip name: use {PREFIX}ARCH/TAG (for instance "
            f"{PREFIX}ViT-B-32/laion2b_s34b_b79k), {PREFIX}hf-hub:owner/repo or {PREFIX}/path/to/folder."
        )
    if arch not in open_clip.list_models():
        raise ModelNotAvailable(f"{name!r}: open_clip knows no architecture {arch!r}.")
    repo = (open_clip.get_pretrained_cfg(arch, tag) or {}).get("hf_hub", "").strip("/")
    if not repo:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise ModelNotAvailable(
            f"{name!r}: {arch} has no pretrained tag {tag!r} with weights on the hub (its tags: "
            f"{tags}). Weights only published as a pickle URL are not loaded."
        )
    return repo


def locate(name: str) -> tuple[Path, str]:
    """(folder in open_clip's layout, source) for an `open_clip:` name."""
    spec = name.strip()[len(PREFIX) :].strip()
    if not spec:
        raise ModelNotAvailable(f"{name!r}: give an open_clip model after {PREFIX!r}.")
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return check_folder(folder.resolve(), name), "local-path"
    if spec.startswith((".", "~", "/")):
        raise ModelNotAvailable(f"Folder {spec!r} does not exist.")
    if spec.startswith("hf-hub:"):
        return _hub_folder(spec[len("hf-hub:") :].strip("/"), name)
    return _hub_folder(_tag_repo(spec, name), name)


def load_open_clip(key: CacheKey) -> LoadedModel:
    """Cache loader for `open_clip:` names (variant "clip"); `tokenizer` is an OpenClipProcessor."""
    if key.variant != "clip":
        raise ModelNotAvailable(f"{key.model!r} is an open_clip model: load it with variant 'clip'.")
    with MODEL_BUILD, torch.inference_mode(False):
        return _load_now(key)


def _load_now(key: CacheKey) -> LoadedModel:
    import open_clip

    started = time.perf_counter()
    folder, source = locate(key.model)
    try:
        json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["model_cfg"]
        clip, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{folder}", weights_only=True)
        tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelNotAvailable(
            f"Could not load {key.model!r} with open_clip from {folder}: {type(exc).__name__}: {exc}"
        ) from exc
    model = OpenClipDualEncoder(clip).to(key.device, DTYPES[key.dtype]).eval().requires_grad_(False)
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=OpenClipProcessor(preprocess, tokenizer),
        kind="vision-language",
        source=source,
        location=str(folder),
        nbytes=model_nbytes(model),
        load_s=time.perf_counter() - started,
    )
