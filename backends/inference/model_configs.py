"""Known models' attention shapes as data (from each model's published config.json), and any hub id's config.

The KV cache calculator needs only the numbers below; `params` is counted from the same fields with the
Llama-family layout (embeddings, q/k/v/o, gated MLP, two RMSNorms a layer, final norm, untied head when
the model has one; Qwen2 adds q/k/v biases), which tests/backends/test_inference_kv.py holds equal to
transformers' own count on the meta device.
"""

from __future__ import annotations

from dataclasses import dataclass

# bytes per element of the cache / the weights
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8": 1, "int8": 1, "int4": 0.5}


@dataclass(frozen=True)
class ModelShape:
    """The fields of a config.json the cache formula and the parameter count read."""

    name: str
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    model_type: str = "llama"
    attention_bias: bool = False  # Qwen2: biases on q, k, v

    @property
    def params(self) -> int:
        h, kv = self.hidden_size, self.num_key_value_heads * self.head_dim
        q = self.num_attention_heads * self.head_dim
        attn = h * q + 2 * h * kv + q * h
        if self.attention_bias:
            attn += q + 2 * kv
        layer = attn + 3 * h * self.intermediate_size + 2 * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return self.vocab_size * h + self.num_hidden_layers * layer + h + head


KNOWN_MODELS = (
    ModelShape("HuggingFaceTB/SmolLM2-135M", 30, 9, 3, 64, 576, 1536, 49152, True, 8192),
    ModelShape("HuggingFaceTB/SmolLM2-360M", 32, 15, 5, 64, 960, 2560, 49152, True, 8192),
    ModelShape("HuggingFaceTB/SmolLM2-1.7B", 24, 32, 32, 64, 2048, 8192, 49152, True, 8192),
    ModelShape("Qwen/Qwen2.5-0.5B", 24, 14, 2, 64, 896, 4864, 151936, True, 32768, "qwen2", True),
    ModelShape("Qwen/Qwen2.5-7B", 28, 28, 4, 128, 3584, 18944, 152064, False, 131072, "qwen2", True),
    ModelShape("mistralai/Mistral-7B-v0.1", 32, 32, 8, 128, 4096, 14336, 32000, False, 32768, "mistral"),
    ModelShape("meta-llama/Llama-2-7b-hf", 32, 32, 32, 128, 4096, 11008, 32000, False, 4096),
    ModelShape("meta-llama/Llama-3.1-8B", 32, 32, 8, 128, 4096, 14336, 128256, False, 131072),
    ModelShape("meta-llama/Llama-3.1-70B", 80, 64, 8, 128, 8192, 28672, 128256, False, 131072),
)
KNOWN_BY_NAME = {m.name: m for m in KNOWN_MODELS}


class ConfigUnavailable(RuntimeError):
    """A hub id whose config.json is neither in the local Hugging Face cache nor reachable."""


def hub_config(hub_id: str, cache_dir: str | None = None):
    """The transformers config of any hub id: the local HF cache first (works offline), then the hub when
    online. Raises ConfigUnavailable with a plain message otherwise. `cache_dir`: another HF hub cache."""
    from transformers import AutoConfig

    hub_id = hub_id.strip()
    if not hub_id:
        raise ConfigUnavailable("no model id given.")
    try:
        return AutoConfig.from_pretrained(hub_id, local_files_only=True, cache_dir=cache_dir)
    except (OSError, ValueError):
        pass
    from backends.models.registry import is_online

    if not is_online():
        raise ConfigUnavailable(
            f"offline, and no config.json for {hub_id!r} in the local Hugging Face cache: "
            "pick a model from the list, or connect to download its config.json."
        )
    try:
        return AutoConfig.from_pretrained(hub_id, cache_dir=cache_dir)
    except (OSError, ValueError) as exc:
        raise ConfigUnavailable(f"could not read the config of {hub_id!r}: {exc}") from exc
