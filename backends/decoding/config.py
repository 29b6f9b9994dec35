"""`DecodingConfig`: one decoding setup (frozen, validated, JSON and `model.generate` kwargs), and `PRESETS`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

STRATEGIES = ("greedy", "sample", "beam", "contrastive")
MAX_NEW_TOKENS = 512
MAX_BEAMS = 16


@dataclass(frozen=True)
class DecodingConfig:
    strategy: str = "greedy"
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int = 0  # 0 = off; for contrastive search: the number of candidates
    top_p: float = 1.0
    min_p: float = 0.0
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False  # True, False or "never", as in transformers
    penalty_alpha: float = 0.6  # contrastive search only
    seed: int = 0

    def validate(self) -> DecodingConfig:
        def bad(name, rule):
            raise ValueError(f"{name}={getattr(self, name)!r} is invalid: {rule}.")

        if self.strategy not in STRATEGIES:
            bad("strategy", f"pick one of {', '.join(STRATEGIES)}")
        for name in ("max_new_tokens", "top_k", "no_repeat_ngram_size", "num_beams", "seed"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                bad(name, "it must be a whole number")
        for name in (
            "temperature",
            "top_p",
            "min_p",
            "typical_p",
            "repetition_penalty",
            "length_penalty",
            "penalty_alpha",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                bad(name, "it must be a finite number")
        if self.max_new_tokens < 1:
            bad("max_new_tokens", "generate at least 1 token")
        if self.max_new_tokens > MAX_NEW_TOKENS:
            bad("max_new_tokens", f"the playground caps it at {MAX_NEW_TOKENS} tokens; ask for that many or fewer")
        if self.temperature <= 0:
            bad("temperature", "it must be above 0 (for always the most likely token use strategy='greedy')")
        if self.top_k < 0:
            bad("top_k", "use 0 to turn it off, or a positive number of tokens")
        if not 0 < self.top_p <= 1:
            bad("top_p", "it must be in (0, 1]; 1 turns it off")
        if not 0 <= self.min_p <= 1:
            bad("min_p", "it must be in [0, 1]; 0 turns it off")
        if not 0 < self.typical_p <= 1:
            bad("typical_p", "it must be in (0, 1]; 1 turns it off")
        if self.repetition_penalty <= 0:
            bad("repetition_penalty", "it must be above 0; 1 turns it off")
        if self.no_repeat_ngram_size < 0:
            bad("no_repeat_ngram_size", "use 0 to turn it off")
        if self.early_stopping not in (True, False, "never"):
            bad("early_stopping", "use True, False or 'never'")
        if self.seed < 0:
            bad("seed", "use 0 or a positive number")
        if self.strategy == "beam" and not 2 <= self.num_beams <= MAX_BEAMS:
            bad("num_beams", f"beam search needs 2 to {MAX_BEAMS} beams (1 beam is greedy search)")
        if self.strategy == "contrastive":
            if self.top_k < 2:
                bad("top_k", "contrastive search needs at least 2 candidates (top_k >= 2)")
            if not 0 < self.penalty_alpha <= 1:
                bad("penalty_alpha", "contrastive search needs it in (0, 1]")
        return self

    def to_generate_kwargs(self) -> dict:
        """The `model.generate(...)` arguments for the same decoding.

        Every knob is given explicitly, because unset ones fall back to the model's
        generation_config and then to transformers' defaults (top_k=50 among them).
        Sampled runs match ours after `torch.manual_seed(seed)`. Contrastive search needs the
        hub repo transformers 5 moved it to (network and trust_remote_code).
        """
        common = dict(
            max_new_tokens=self.max_new_tokens,
            repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
        )
        if self.strategy == "greedy":
            return dict(common, do_sample=False, num_beams=1)
        if self.strategy == "sample":
            return dict(
                common,
                do_sample=True,
                num_beams=1,
                temperature=self.temperature,
                top_k=self.top_k,
                top_p=self.top_p,
                min_p=self.min_p or None,
                typical_p=self.typical_p,
            )
        if self.strategy == "beam":
            return dict(
                common,
                do_sample=False,
                num_beams=self.num_beams,
                length_penalty=self.length_penalty,
                early_stopping=self.early_stopping,
            )
        return dict(
            common,
            do_sample=False,
            num_beams=1,
            top_k=self.top_k,
            penalty_alpha=self.penalty_alpha,
            custom_generate="transformers-community/contrastive-search",
        )

    def to_snippet(self) -> str:
        """The equivalent transformers call, as Python a learner can copy."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_generate_kwargs().items())
        prefix = f"torch.manual_seed({self.seed})\n" if self.strategy == "sample" else ""
        if self.strategy == "contrastive":
            # We never switch remote code on; a learner who runs this online opts in knowingly.
            prefix = "# Online only: this hub repo runs its own code, so generate() also needs trust_remote_code.\n"
        return f"{prefix}output_ids = model.generate(**inputs, {args})"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DecodingConfig:
        if not isinstance(data, dict):
            raise ValueError(f"A decoding config must be a JSON object, got {type(data).__name__}: {data!r}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown decoding config field(s) {unknown}; known fields: {', '.join(sorted(known))}.")
        return cls(**data).validate()


PRESETS: dict[str, DecodingConfig] = {
    "greedy": DecodingConfig(strategy="greedy"),
    "beam 5": DecodingConfig(strategy="beam", num_beams=5),
    "sampling t=0.7 top-k 50": DecodingConfig(strategy="sample", temperature=0.7, top_k=50),
    "nucleus top-p 0.9": DecodingConfig(strategy="sample", top_p=0.9),
}
