"""Decoding strategies on a real causal LM, one token at a time, observable at every step.

Parts, top to bottom:
  1. `DecodingConfig` (frozen, validated, JSON and `model.generate` kwargs) and `PRESETS`.
  2. `encode_prompt`, and the token loop `generate_stream` (greedy, sampling, contrastive
     search) that yields a `TokenStep` per token as soon as it is chosen; `branch` re-runs it
     from any step with another token; `stream_columns` runs several configs side by side,
     one step each in turn; `distribution_at` shows one step's distribution before and after
     filtering.
  3. `run_record` / `load_run`: a run as JSON, and back.

Beside it, by concept: `backends/sampling.py` (the hand-written sampler),
`backends/contrastive.py` (contrastive search, from the paper), `backends/beam_search.py`
(beam search by hand, so the tree of kept, finished and dropped beams is visible) and
`backends/decoding_metrics.py` (perplexity, distinct-n, repetition, KV cache on/off).

Equivalence with transformers (tested in tests/backends/test_decoding.py): greedy,
sampling (same seed) and beam search give the tokens `model.generate` gives. Contrastive
search left transformers' core in version 5 (it is a hub `custom_generate` repo now, which
needs the network and trust_remote_code), so it is written here from the paper's definition
and tested against a brute-force version.

Models come from the shared cache and are shared by all sessions: nothing here modifies
them (no training mode, no hooks, no config or generation_config edits). Every loop keeps
its own KV cache (`DynamicCache`), so one token costs one forward pass of one position.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from backends.sampling import pick_token, process_logits

STRATEGIES = ("greedy", "sample", "beam", "contrastive")
MAX_NEW_TOKENS = 512
MAX_BEAMS = 16
RUN_FORMAT = "llm-playground/decoding-run"
RUN_VERSION = 1


# ---------------------------------------------------------------------------
# 1. Configuration
# ---------------------------------------------------------------------------


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

    def validate(self) -> "DecodingConfig":
        def bad(name, rule):
            raise ValueError(f"{name}={getattr(self, name)!r} is invalid: {rule}.")

        if self.strategy not in STRATEGIES:
            bad("strategy", f"pick one of {', '.join(STRATEGIES)}")
        for name in ("max_new_tokens", "top_k", "no_repeat_ngram_size", "num_beams", "seed"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                bad(name, "it must be a whole number")
        for name in ("temperature", "top_p", "min_p", "typical_p", "repetition_penalty", "length_penalty",
                     "penalty_alpha"):
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
        common = dict(max_new_tokens=self.max_new_tokens, repetition_penalty=self.repetition_penalty,
                      no_repeat_ngram_size=self.no_repeat_ngram_size)
        if self.strategy == "greedy":
            return dict(common, do_sample=False, num_beams=1)
        if self.strategy == "sample":
            return dict(common, do_sample=True, num_beams=1, temperature=self.temperature, top_k=self.top_k,
                        top_p=self.top_p, min_p=self.min_p or None, typical_p=self.typical_p)
        if self.strategy == "beam":
            return dict(common, do_sample=False, num_beams=self.num_beams, length_penalty=self.length_penalty,
                        early_stopping=self.early_stopping)
        return dict(common, do_sample=False, num_beams=1, top_k=self.top_k, penalty_alpha=self.penalty_alpha,
                    custom_generate="transformers-community/contrastive-search")

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
    def from_dict(cls, data: dict) -> "DecodingConfig":
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


# ---------------------------------------------------------------------------
# 2. The token loop
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Alternative:
    token_id: int
    text: str
    prob: float  # under the model's raw softmax
    filtered_prob: float = 0.0  # after penalties and filters: what the pick used


@dataclass(frozen=True)
class Candidate:
    """One contrastive-search candidate: score = (1 - alpha) * prob - alpha * similarity."""

    token_id: int
    text: str
    prob: float
    similarity: float  # highest cosine similarity to an earlier hidden state
    score: float


@dataclass(frozen=True)
class TokenStep:
    index: int  # 0 = first generated token
    token_id: int
    text: str  # this token alone (a chip label; may be part of a multi-byte character)
    piece: str  # what this token adds to the decoded output (for streaming the text)
    prob: float
    logprob: float
    filtered_prob: float
    top: list[Alternative]  # the most likely next tokens under the raw distribution
    candidates: list[Candidate] = field(default_factory=list)  # contrastive search only


@dataclass(frozen=True)
class StepDistribution:
    raw: list[Alternative]  # top tokens before filtering, most likely first
    filtered: list[Alternative]  # top tokens after filtering (only tokens still possible)
    kept: int  # how many tokens keep a non-zero probability after filtering
    kept_mass: float  # their share of the raw probability
    vocab_size: int


def encode_prompt(loaded, text: str, chat: bool) -> list[int]:
    """Token ids of a raw prompt, or of one user message in the model's chat template."""
    if text is None or not str(text).strip():
        raise ValueError(f"The prompt is empty ({text!r}): type something for the model to continue.")
    tok = loaded.tokenizer
    if not chat:
        return list(tok(text)["input_ids"])
    if not getattr(tok, "chat_template", None):
        raise ValueError(f"{loaded.key.model!r} has no chat template: use a raw prompt (chat=False).")
    ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def eos_ids(loaded) -> set[int]:
    eos = loaded.model.generation_config.eos_token_id
    if eos is None:
        eos = loaded.tokenizer.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])


def _device(loaded) -> torch.device:
    return next(loaded.model.parameters()).device


def _new_cache(loaded):
    from transformers import DynamicCache

    return DynamicCache(config=loaded.model.config)


@functools.lru_cache(maxsize=None)
def _keeps_last_logits_only(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def _forward(loaded, new_ids: torch.Tensor, cache, total_len: int) -> torch.Tensor:
    """Scores for the next token of every row of `new_ids` ([rows, new]) after `cache` (float32 [rows, vocab])."""
    model = loaded.model
    extra = {"logits_to_keep": 1} if _keeps_last_logits_only(type(model)) else {}
    mask = torch.ones(new_ids.shape[0], total_len, dtype=torch.long, device=new_ids.device)
    out = model(input_ids=new_ids, attention_mask=mask, past_key_values=cache, use_cache=cache is not None, **extra)
    return out.logits[:, -1].float()


def _alternatives(loaded, probs: torch.Tensor, filtered: torch.Tensor, n: int) -> list[Alternative]:
    values, ids = torch.topk(probs, min(n, probs.shape[-1]))
    ids = ids.tolist()
    kept = filtered[ids].tolist()
    texts = [loaded.tokenizer.decode([i]) for i in ids]
    return [Alternative(i, t, p, f) for i, t, p, f in zip(ids, texts, values.tolist(), kept)]


class _TextTracker:
    """Turns tokens into the text they add, holding back bytes of a character not finished yet."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd") or not text.startswith(self.text):
            return ""
        piece, self.text = text[len(self.text):], text
        return piece


def generate_stream(
    loaded, prompt_ids: list[int], config: DecodingConfig, should_stop: Callable[[], bool] | None = None,
    top_n: int = 5, forced_first: int | None = None, start_index: int = 0,
) -> Iterator[TokenStep]:
    """Greedy, sampling or contrastive search, one `TokenStep` per token as soon as it is chosen.

    Stops at an end-of-sequence token, after `max_new_tokens`, or when `should_stop()` is true.
    `forced_first` takes that token instead of the first pick (see `branch`).
    """
    config.validate()
    if config.strategy == "beam":
        raise ValueError("Beam search keeps several sequences at once: call beam_search(), not generate_stream().")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: encode a prompt first (encode_prompt).")
    if config.strategy == "contrastive":
        from backends.contrastive import contrastive_stream

        yield from contrastive_stream(loaded, prompt_ids, config, should_stop, top_n, forced_first, start_index)
        return
    stop_ids = eos_ids(loaded)
    # Seeded like torch.manual_seed(seed), which is what model.generate draws from.
    generator = torch.Generator(device=_device(loaded)).manual_seed(config.seed)
    text = _TextTracker(loaded.tokenizer)
    ids = list(prompt_ids)
    cache = _new_cache(loaded)
    new = torch.tensor([ids], device=_device(loaded))
    with torch.inference_mode():
        for step in range(config.max_new_tokens):
            if should_stop is not None and should_stop():
                return
            logits = _forward(loaded, new, cache, len(ids))[0]
            scores = process_logits(logits, ids, config)
            token = forced_first if (step == 0 and forced_first is not None) else pick_token(scores, config, generator)
            yield _token_step(loaded, start_index + step, token, logits, scores, top_n, text)
            ids.append(token)
            if token in stop_ids:
                return
            new = torch.tensor([[token]], device=new.device)


def _token_step(loaded, index, token, logits, scores, top_n, text, candidates=()) -> TokenStep:
    log_probs = logits.log_softmax(dim=-1)
    probs = log_probs.exp()
    filtered = scores.softmax(dim=-1)
    return TokenStep(
        index=index, token_id=token, text=loaded.tokenizer.decode([token]), piece=text.add(token),
        prob=float(probs[token]), logprob=float(log_probs[token]), filtered_prob=float(filtered[token]),
        top=_alternatives(loaded, probs, filtered, top_n), candidates=list(candidates),
    )


@dataclass(frozen=True)
class ColumnEvent:
    """One thing that happened in one column of a side-by-side run."""

    column: int  # index into the configs
    elapsed_s: float  # this column's own compute time so far (for its tokens/s)
    token: TokenStep | None = None  # greedy / sample / contrastive: the new token
    beam_step: object | None = None  # beam search: the new `BeamStep`
    result: object | None = None  # beam search, at the end: the `BeamResult`
    done: bool = False


def stream_columns(loaded, prompt_ids: list[int], configs: list[DecodingConfig],
                   should_stop: Callable[[], bool] | None = None, top_n: int = 5) -> Iterator[ColumnEvent]:
    """Run several configs on one prompt, taking turns one step each, so every column grows at once.

    Each column ends with an event with `done=True`. Configs are validated before anything runs.
    """
    from backends.beam_search import iter_beam_search

    for i, config in enumerate(configs):
        try:
            config.validate()
        except ValueError as exc:
            raise ValueError(f"Column {i + 1}: {exc}") from exc
    running = {}
    for i, config in enumerate(configs):
        if config.strategy == "beam":
            running[i] = iter_beam_search(loaded, prompt_ids, config, should_stop)
        else:
            running[i] = generate_stream(loaded, prompt_ids, config, should_stop, top_n)
    elapsed = dict.fromkeys(running, 0.0)
    while running:
        for i in list(running):
            started = time.perf_counter()
            try:
                item = next(running[i])
            except StopIteration as end:
                elapsed[i] += time.perf_counter() - started
                del running[i]
                yield ColumnEvent(i, elapsed[i], result=end.value, done=True)
                continue
            elapsed[i] += time.perf_counter() - started
            if isinstance(item, TokenStep):
                yield ColumnEvent(i, elapsed[i], token=item)
            else:
                yield ColumnEvent(i, elapsed[i], beam_step=item)


def branch(
    loaded, prompt_ids: list[int], generated_ids: list[int], at_step: int, alternative_id: int,
    config: DecodingConfig, should_stop: Callable[[], bool] | None = None, top_n: int = 5,
) -> Iterator[TokenStep]:
    """Continue from step `at_step` with `alternative_id` instead of the token chosen there.

    Yields the alternative itself first (index `at_step`), then the new continuation, up to
    the same total of `max_new_tokens`. Indices continue the original run's.
    """
    if not 0 <= at_step <= len(generated_ids):
        raise ValueError(f"at_step={at_step} is outside the run (0 to {len(generated_ids)}).")
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    if not 0 <= int(alternative_id) < vocab:
        raise ValueError(f"alternative_id={alternative_id} is not a token id of this model (0 to {vocab - 1}).")
    remaining = config.max_new_tokens - at_step
    if remaining < 1:
        raise ValueError(f"at_step={at_step} leaves no room under max_new_tokens={config.max_new_tokens}.")
    rest = dataclasses.replace(config, max_new_tokens=remaining)
    prefix = list(prompt_ids) + list(generated_ids[:at_step])
    yield from generate_stream(loaded, prefix, rest, should_stop, top_n, forced_first=int(alternative_id),
                               start_index=at_step)


def distribution_at(loaded, ids_before_step: list[int], config: DecodingConfig, top_n: int = 20) -> StepDistribution:
    """The next-token distribution after `ids_before_step` (prompt + tokens so far), before and after
    the config's penalties and filters (temperature/top-k/top-p/min-p/typical apply when sampling)."""
    config.validate()
    if not ids_before_step:
        raise ValueError("ids_before_step is empty: pass the prompt ids and the tokens generated before the step.")
    if not 1 <= top_n <= 1000:
        raise ValueError(f"top_n={top_n!r} is invalid: show 1 to 1000 tokens (each one is decoded to text).")
    with torch.inference_mode():
        logits = _forward(loaded, torch.tensor([list(ids_before_step)], device=_device(loaded)), None,
                          len(ids_before_step))[0]
        scores = process_logits(logits, list(ids_before_step), config)
        probs, filtered = logits.softmax(dim=-1), scores.softmax(dim=-1)
        possible = filtered > 0
        kept, kept_mass = int(possible.sum()), float(probs[possible].sum())
        raw = _alternatives(loaded, probs, filtered, top_n)
        values, idx = torch.topk(filtered, min(top_n, kept))
        post = [Alternative(int(i), loaded.tokenizer.decode([int(i)]), float(probs[i]), float(v))
                for i, v in zip(idx, values)]
    return StepDistribution(raw=raw, filtered=post, kept=kept, kept_mass=kept_mass, vocab_size=int(logits.shape[-1]))



# ---------------------------------------------------------------------------
# 3. A run as JSON
# ---------------------------------------------------------------------------


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

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


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


def run_record(prompt: str, chat: bool, configs: list[DecodingConfig], seed: int, outputs: list,
               model: str | None = None) -> dict:
    """Everything needed to reproduce a run, as a JSON-able dict (outputs: RunOutput or dicts, one per config)."""
    if len(configs) != len(outputs):
        raise ValueError(f"{len(configs)} configs but {len(outputs)} outputs: give one output per config.")
    return {
        "format": RUN_FORMAT, "version": RUN_VERSION, "model": model, "prompt": prompt, "chat": bool(chat),
        "seed": int(seed), "configs": [c.validate().to_dict() for c in configs],
        "outputs": [_output_dict(o) for o in outputs], "versions": library_versions(),
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
    return RunRecord(prompt=data["prompt"], chat=data["chat"], seed=data["seed"], configs=parsed,
                     outputs=[RunOutput(**_output_dict(o)) for o in outputs], model=data.get("model"),
                     versions=dict(data.get("versions") or {}))
