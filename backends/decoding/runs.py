"""A decoding run as JSON (prompt, configs, seed, outputs, library versions), and back."""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass

import torch

from backends.decoding.config import DecodingConfig

RUN_FORMAT = "llm-playground/decoding-run"
RUN_VERSION = 1


@dataclass(frozen=True)
class RunOutput:
    token_ids: list[int]
    text: str
    metrics: dict | None = None  # dataclasses.asdict(RunMetrics), if measured


@dataclass(frozen=True)
class RunRecord:
    prompt: str
    chat: bool
    seed: int
    configs: list[DecodingConfig]
    outputs: list[RunOutput]
    model: str | None
    versions: dict


def library_versions() -> dict:
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def _output_dict(out) -> dict:
    if isinstance(out, RunOutput):
        out = dataclasses.asdict(out)
    if not isinstance(out, dict) or "token_ids" not in out:
        raise ValueError(f"Each output needs at least 'token_ids' (and 'text'), got {out!r:.200}.")
    ids = out["token_ids"]
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise ValueError(f"'token_ids' must be a list of non-negative whole numbers, got {ids!r:.200}.")
    text = out.get("text", "")
    if not isinstance(text, str):
        raise ValueError(f"'text' must be a string, got {text!r:.200}.")
    metrics = out.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise ValueError(f"'metrics' must be an object or null, got {metrics!r:.200}.")
    return {"token_ids": list(ids), "text": text, "metrics": metrics}


def run_record(
    prompt: str, chat: bool, configs: list[DecodingConfig], seed: int, outputs: list, model: str | None = None
) -> dict:
    """Everything needed to reproduce a run, as a JSON-able dict (outputs: RunOutput or dicts, one per config)."""
    if len(configs) != len(outputs):
        raise ValueError(f"{len(configs)} configs but {len(outputs)} outputs: give one output per config.")
    return {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "model": model,
        "prompt": prompt,
        "chat": bool(chat),
        "seed": int(seed),
        "configs": [c.validate().to_dict() for c in configs],
        "outputs": [_output_dict(o) for o in outputs],
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def load_run(data: dict) -> RunRecord:
    """A dict from `run_record` (e.g. parsed from an uploaded JSON file) back into configs and outputs."""
    if not isinstance(data, dict):
        raise ValueError(f"A decoding run must be a JSON object, got {type(data).__name__}.")
    if data.get("format") != RUN_FORMAT:
        raise ValueError(f"Not a decoding run: 'format' is {data.get('format')!r}, expected {RUN_FORMAT!r}.")
    if data.get("version") != RUN_VERSION:
        raise ValueError(f"Unsupported run version {data.get('version')!r}; this app reads version {RUN_VERSION}.")
    missing = [k for k in ("prompt", "chat", "seed", "configs", "outputs") if k not in data]
    if missing:
        raise ValueError(f"The run is missing {', '.join(missing)}.")
    if not isinstance(data["prompt"], str) or not isinstance(data["chat"], bool):
        raise ValueError("'prompt' must be a string and 'chat' true or false.")
    if not isinstance(data["seed"], int) or isinstance(data["seed"], bool) or data["seed"] < 0:
        raise ValueError(f"'seed' must be a non-negative whole number, got {data['seed']!r}.")
    configs, outputs = data["configs"], data["outputs"]
    if not isinstance(configs, list) or not isinstance(outputs, list) or len(configs) != len(outputs):
        raise ValueError("'configs' and 'outputs' must be lists of the same length (one output per config).")
    parsed = []
    for i, c in enumerate(configs):
        try:
            parsed.append(DecodingConfig.from_dict(c))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Config {i + 1}: {exc}") from exc
    return RunRecord(
        prompt=data["prompt"],
        chat=data["chat"],
        seed=data["seed"],
        configs=parsed,
        outputs=[RunOutput(**_output_dict(o)) for o in outputs],
        model=data.get("model"),
        versions=dict(data.get("versions") or {}),
    )
