"""Fast DPO on a CPU: the loss of dpo.py, computed on the top layers of the model only.

A plain LoRA DPO step (TRL's way) runs the whole model twice per sequence, the policy with
gradients and the reference without, and the 49152-wide output head over every position: about
3.4 s for two 128-token pairs on this 2-core machine. Five shortcuts make it several times
faster; the first is a choice of what trains, the other four change no number:

1. **LoRA on the top K layers only** (`LoraConfig(layers_to_transform=[L-K .. L-1])`, K =
   `DpoSettings.top_layers`). The lower L-K layers keep the base weights and get no adapter.
   This is the one real choice: fewer layers can change (the default K = 6 of 30 learns the brevity rule).
2. **Cached lower layers.** Layers 0 .. L-K-1 have no adapter and never change, so the hidden
   state entering layer L-K is a fixed function of the tokens: `prepare` computes it once
   (no_grad, float32, unpadded) and a training step runs only the top K layers, forward and
   backward. The top layers are a model of their own (`TopLayers`: the same LlamaModel with only
   the top K decoder layers in its list, no final norm) fed `inputs_embeds=<cached hidden>`.
   Llama applies the rotary position embedding inside every layer from the position ids, and a
   layer reads nothing else from below, so this is exactly the full model from layer L-K on
   (transformers 5.23 LlamaModel.forward: embeddings -> rotary from position ids -> mask -> each
   layer in the list -> norm; use_cache=False).
3. **Cached reference log-probs.** The reference is the policy with its adapters disabled, i.e.
   the base model, and it never changes: its sequence log-probs are computed once per pair in
   `prepare` (TRL's `precompute_ref_log_probs=True` does the same).
4. **Head on response positions only.** The final norm and the output head (a 49152 x 576
   matrix, as many multiply-adds per position as seven decoder layers) run only at the positions
   that predict response tokens; the DPO loss never reads a prompt position's logits.
5. **Shared prefix computed once per pair.** A causal model's state at a position depends only on
   the tokens up to it, so the prompt (and any common start of the two responses: in the brevity
   set the chosen answer is the start of the rejected one) has the same hidden states in both
   sequences. A pair is packed into one row (`CachedPair`): the rejected sequence, then the chosen
   sequence's remaining tokens, which attend (a 4D attention mask) to the shared prefix and to
   each other, at their own position ids. Each shared token is computed once, in the cache, in the
   top layers and in the head.

tests/backends/test_alignment_fast.py holds the fast path equal to the plain computation
(`dpo.sequence_logps` / `dpo.batch_loss` over the full LoRA model, all layers, both sequences
separately, whole-vocabulary head): sequence log-probs, cached reference log-probs, loss,
rewards, margins, the LoRA gradients and the probe KL.

Memory: the cache holds, per pair, the hidden state entering layer L-K of each packed token
(hidden_size float32 values: 576 x 4 = 2304 bytes for SmolLM2) and its id (8 bytes), plus two
reference log-probs: 2312 bytes per packed token, `Prepared.cache_bytes`; about 0.24 MB for a
shipped brevity pair (~104 packed tokens: a 37-token prompt, a 65-token rejected answer of which
the chosen answer is the start, and the chosen answer's 2 end-of-turn tokens). The cached model's
weights are never copied or changed: the LoRA copy is a `frozen_view` over them.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from backends.alignment import dpo
from backends.alignment.config import DataError, DpoSettings
from backends.alignment.pairs import Pair
from backends.core.build_lock import MODEL_BUILD
from backends.core.scheduler import shared_scheduler
from backends.models.loaders import frozen_view

LABEL = "alignment"  # the compute scheduler's label for every step here
PREPARE_TOKENS = 2048  # tokens per prepare chunk (one scheduler turn each)


# ---------------------------------------------------------------------------------------------
# The top layers as a model of their own


def _layer_view(inner: torch.nn.Module, layers: Sequence[torch.nn.Module]) -> torch.nn.Module:
    """`inner` (a LlamaModel) with only `layers` in its decoder list and no final norm.

    A shallow copy: the embeddings, rotary embedding, config and the layers themselves are the
    original's modules (a LoRA layer trained through the view is the model's own); only the module
    dict is new, so `inner` keeps all its layers. LlamaModel.forward loops over
    `self.layers[: config.num_hidden_layers]`, i.e. over exactly these layers."""
    view = copy.copy(inner)
    view._modules = {**inner._modules, "layers": torch.nn.ModuleList(layers), "norm": torch.nn.Identity()}
    return view


class TopLayers:
    """A LoRA Llama model split at layer L-K: `bottom` (layers 0..L-K-1), `top` (L-K..L-1), the head.

    `lower(ids, ...)` is the hidden state entering layer L-K; `upper(hidden, ...)` runs the top K
    layers on it (pre-norm output); `logits(h)` applies the final norm and the output head to the
    rows of `h` it is given (only response positions are ever passed). Both views take a 4D
    boolean attention mask (True: may attend) and position ids, which LlamaModel uses as given."""

    def __init__(self, model: PeftModel, top_layers: int):
        causal = model.get_base_model()
        inner = causal.model
        layers = list(inner.layers)
        self.model = model
        self.split = len(layers) - top_layers
        self.bottom = _layer_view(inner, layers[: self.split])
        self.top = _layer_view(inner, layers[self.split :])
        self.norm = inner.norm
        self.head = causal.get_output_embeddings()

    def lower(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.bottom(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state

    def upper(self, hidden: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = self.top(inputs_embeds=hidden, attention_mask=mask, position_ids=positions, use_cache=False)
        return out.last_hidden_state

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(h)).float()


# ---------------------------------------------------------------------------------------------
# One pair, packed: the rejected sequence, then the chosen one's tokens after the shared prefix


@dataclass(frozen=True)
class CachedPair:
    """A pair as one packed row (shortcut 5): the rejected sequence (prompt + rejected response),
    then the chosen sequence's tokens after the `shared` tokens both sequences start with.

    Row index i < n_rejected is rejected position i; row index n_rejected + k is chosen position
    shared + k, which attends to the first `shared` tokens and to the chosen tokens before it
    (`mask()`), never to the rejected response. `hidden` is the cached hidden state entering layer
    L-K at every row index; `ref_*` the reference's sequence log-probs."""

    ids: torch.Tensor  # (n,) int64, n = n_rejected + n_chosen - shared
    hidden: torch.Tensor  # (n, hidden_size) float32
    start: int  # prompt length: both responses start here
    shared: int  # leading tokens the two sequences have in common (>= start)
    n_rejected: int  # length of prompt + rejected response (after truncation)
    n_chosen: int
    ref_chosen: float = 0.0
    ref_rejected: float = 0.0

    def index(self, side: str) -> torch.Tensor:
        """Row indices of the chosen or rejected sequence's positions 0 .. length-1."""
        if side == "rejected":
            return torch.arange(self.n_rejected)
        tail = torch.arange(self.n_rejected, self.n_rejected + self.n_chosen - self.shared)
        return torch.cat([torch.arange(self.shared), tail])

    def sequence(self, side: str) -> torch.Tensor:
        return self.ids[self.index(side)]

    def positions(self) -> torch.Tensor:
        return torch.cat([torch.arange(self.n_rejected), torch.arange(self.shared, self.n_chosen)])

    def mask(self) -> torch.Tensor:
        """(n, n) bool, True where a row index may attend to a column index."""
        n = len(self.ids)
        allowed = torch.ones((n, n), dtype=torch.bool).tril()
        allowed[self.n_rejected :, self.shared : self.n_rejected] = False
        return allowed

    def n_response(self, side: str) -> int:
        """Response tokens (dpo.collate_pairs' completion_mask sum; IPO divides by it)."""
        return (self.n_chosen if side == "chosen" else self.n_rejected) - self.start

    @property
    def nbytes(self) -> int:
        return self.ids.numel() * self.ids.element_size() + self.hidden.numel() * self.hidden.element_size() + 16


def pack_pair(
    prompt: tuple[int, ...], chosen: tuple[int, ...], rejected: tuple[int, ...], max_length: int
) -> CachedPair:
    """Truncate prompt + response to max_length (keep_start, as dpo.collate_pairs) and pack the two sequences."""
    c, r = (prompt + chosen)[:max_length], (prompt + rejected)[:max_length]
    shared = 0
    while shared < min(len(c), len(r)) and c[shared] == r[shared]:
        shared += 1
    ids = torch.tensor(r + c[shared:], dtype=torch.long)
    return CachedPair(ids, torch.empty(0), len(prompt), shared, len(r), len(c))


def _batch(pairs: Sequence[CachedPair], with_hidden: bool = True):
    """Padded rows of packed pairs: ids, hidden (zeros at padding), a (B, 1, W, W) bool mask and
    position ids. A padding row attends to itself only, so no attention row is empty (NaN)."""
    width = max(len(p.ids) for p in pairs)
    ids = torch.zeros((len(pairs), width), dtype=torch.long)
    positions = torch.zeros((len(pairs), width), dtype=torch.long)
    mask = torch.eye(width, dtype=torch.bool).repeat(len(pairs), 1, 1, 1)
    hidden = None
    if with_hidden:
        hidden = pairs[0].hidden.new_zeros((len(pairs), width, pairs[0].hidden.shape[-1]))
    for row, p in enumerate(pairs):
        n = len(p.ids)
        ids[row, :n] = p.ids
        positions[row, :n] = p.positions()
        mask[row, 0, :n, :n] = p.mask()
        if with_hidden:
            hidden[row, :n] = p.hidden
    return ids, hidden, mask, positions


def _response_tokens(pairs: Sequence[CachedPair], width: int, sides: Sequence[str] = ("chosen", "rejected")):
    """For every response token of the given sides: (flat row index of the position that predicts it,
    the token, which sequence it belongs to). Sequences are numbered side by side: all chosen, then
    all rejected, as dpo.collate_pairs orders its rows. Position t-1 predicts token t; token 0
    predicts nothing, as in dpo.token_logps."""
    flat, targets, owner = [], [], []
    for s, side in enumerate(sides):
        for row, p in enumerate(pairs):
            index, ids = p.index(side), p.sequence(side)
            first = max(p.start, 1)
            flat.append(row * width + index[first - 1 : -1])
            targets.append(ids[first:])
            owner.append(torch.full((len(ids) - first,), s * len(pairs) + row, dtype=torch.long))
    return torch.cat(flat), torch.cat(targets), torch.cat(owner)


def upper_logps(split: TopLayers, pairs: Sequence[CachedPair], hidden, mask, positions, sides=("chosen", "rejected")):
    """Sequence log-probs (sum over response tokens) from the packed rows' cached hidden states:
    (chosen of every pair, then rejected of every pair).

    The top K layers run on every row index (attention needs the prompt); the head only on the
    distinct positions that predict a response token (a position the two sequences share is
    computed once), packed into one (positions, vocab) matrix."""
    out = split.upper(hidden, mask, positions)
    flat, targets, owner = _response_tokens(pairs, hidden.shape[1], sides)
    where, which = torch.unique(flat, return_inverse=True)
    logits = split.logits(out.reshape(-1, out.shape[-1])[where])
    per_token = logits[which, targets] - torch.logsumexp(logits, dim=-1)[which]
    return torch.zeros(len(sides) * len(pairs), dtype=per_token.dtype).index_add(0, owner, per_token)


def policy_logps(split: TopLayers, pairs: Sequence[CachedPair]) -> torch.Tensor:
    """The policy's sequence log-probs (chosen rows, then rejected), differentiable in the LoRA weights."""
    _, hidden, mask, positions = _batch(pairs)
    return upper_logps(split, pairs, hidden, mask, positions)


def step_loss(split: TopLayers, pairs: Sequence[CachedPair], beta: float, loss_type: str) -> dpo.DPOResult:
    """One DPO step's loss, rewards, margins and accuracy (dpo.dpo_loss) with the cached reference."""
    logps = policy_logps(split, pairs)
    n = len(pairs)
    ref_chosen = torch.tensor([p.ref_chosen for p in pairs], dtype=logps.dtype)
    ref_rejected = torch.tensor([p.ref_rejected for p in pairs], dtype=logps.dtype)
    tokens_c = torch.tensor([p.n_response("chosen") for p in pairs])
    tokens_r = torch.tensor([p.n_response("rejected") for p in pairs])
    return dpo.dpo_loss(logps[:n], logps[n:], ref_chosen, ref_rejected, beta, loss_type, tokens_c, tokens_r)


@torch.no_grad()
def probe_kl(split: TopLayers, pairs: Sequence[CachedPair]) -> float:
    """Exact mean per-token KL(policy || reference) over the whole vocabulary at the positions that
    predict the chosen responses of `pairs`; the reference logits come from the same top layers over
    the same cached hidden states with the adapters disabled."""
    _, hidden, mask, positions = _batch(pairs)
    flat, _, _ = _response_tokens(pairs, hidden.shape[1], ("chosen",))

    def logp() -> torch.Tensor:
        out = split.upper(hidden, mask, positions)
        return torch.log_softmax(split.logits(out.reshape(-1, out.shape[-1])[flat]), dim=-1)

    policy = logp()
    with split.model.disable_adapter():
        reference = logp()
    return float((policy.exp() * (policy - reference)).sum(dim=-1).mean())


# ---------------------------------------------------------------------------------------------
# Prepare: encode, build the LoRA copy, fill the caches


def lora_policy(base: torch.nn.Module, settings: DpoSettings) -> PeftModel:
    """A fresh, seeded LoRA copy of `base` with adapters on the top `settings.top_layers` layers.

    Its frozen weights are `base`'s own storage (`frozen_view`); `base` is never changed. LoRA
    dropout is 0 (peft's default, and what makes a step deterministic)."""
    n_layers = base.config.num_hidden_layers
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=list(settings.target_modules),
        layers_to_transform=list(range(n_layers - settings.top_layers, n_layers)),
        task_type="CAUSAL_LM",
    )
    with MODEL_BUILD:
        torch.manual_seed(settings.seed)
        return get_peft_model(frozen_view(base), config)


@dataclass
class Prepared:
    """Caches for a DPO run (see the module doc's Memory note) and the LoRA copy they were made with."""

    settings: DpoSettings
    base: torch.nn.Module  # the shared cached model: read only
    model: PeftModel  # the fresh LoRA policy (dpo_job trains it; a second run gets a new copy)
    pairs: list[CachedPair]
    encoded: list[dpo.EncodedPair]
    probe: tuple[int, ...]  # pair indices whose chosen responses make the KL probe set
    prepare_seconds: float
    truncated: int = 0  # sequences cut to max_length
    claimed: list = field(default_factory=list)  # runs that took `model` (see train.claim_policy)

    @property
    def cache_bytes(self) -> int:
        return sum(p.nbytes for p in self.pairs)

    @property
    def tokens(self) -> tuple[int, int]:
        """(tokens cached, tokens of the two sequences laid out separately)."""
        return sum(len(p.ids) for p in self.pairs), sum(p.n_chosen + p.n_rejected for p in self.pairs)


def probe_indices(n_pairs: int, k: int) -> tuple[int, ...]:
    """k pair indices spread evenly over the set (the same every run)."""
    k = min(k, n_pairs)
    return tuple(sorted({round(i * (n_pairs - 1) / max(k - 1, 1)) for i in range(k)}))


def prepare(
    model: torch.nn.Module,
    tokenizer,
    pairs: list[Pair],
    settings: DpoSettings | None = None,
    report: Callable[[float, str], None] | None = None,
) -> Prepared:
    """Encode the pairs (dpo.encode_pair, keep_start truncation to max_length), pack each pair
    into one row, build the LoRA copy, and cache each row's lower-layer hidden state and each
    pair's reference log-probs.

    Work is done in chunks of about PREPARE_TOKENS tokens (rows sorted by length so padding is
    small), each chunk one turn on the shared compute scheduler; `report(fraction, message)` after
    each. The hidden states are computed in padded batches and stored unpadded."""
    settings = (settings or DpoSettings()).validate(model)
    if not pairs:
        raise DataError(
            "The preference set is empty: it holds no pairs. Add at least one prompt/chosen/rejected pair."
        )
    started = time.perf_counter()
    say = report or (lambda fraction, message: None)
    say(0.0, f"encoding {len(pairs)} pairs")
    encoded = [dpo.encode_pair(tokenizer, p.prompt, p.chosen, p.rejected) for p in pairs]
    packed, truncated = [], 0
    for i, e in enumerate(encoded):
        for response in (e.chosen_ids, e.rejected_ids):
            truncated += len(e.prompt_ids) + len(response) > settings.max_length
        if len(e.prompt_ids) >= settings.max_length:
            raise DataError(
                f"Pair {i} ({pairs[i].prompt[:40]!r}) keeps no response token within max_length = "
                f"{settings.max_length} (its prompt is {len(e.prompt_ids)} tokens): raise max_length."
            )
        packed.append(pack_pair(e.prompt_ids, e.chosen_ids, e.rejected_ids, settings.max_length))
    say(0.02, "copying the model")
    policy = lora_policy(model, settings)
    split = TopLayers(policy, settings.top_layers)
    order = sorted(range(len(packed)), key=lambda j: len(packed[j].ids))
    chunks, chunk = [], []
    for j in order:
        if chunk and (len(chunk) + 1) * len(packed[j].ids) > PREPARE_TOKENS:
            chunks.append(chunk)
            chunk = []
        chunk.append(j)
    chunks.append(chunk)
    done_tokens, all_tokens = 0, sum(len(p.ids) for p in packed)
    for chunk in chunks:
        rows = [packed[j] for j in chunk]
        ids, _, mask, positions = _batch(rows, with_hidden=False)
        with shared_scheduler().turn(LABEL), torch.no_grad(), policy.disable_adapter():
            hidden = split.lower(ids, mask, positions).float()
            rows = [dataclasses.replace(p, hidden=hidden[row, : len(p.ids)].clone()) for row, p in enumerate(rows)]
            ref = upper_logps(split, rows, hidden, mask, positions)
        for row, (j, p) in enumerate(zip(chunk, rows, strict=True)):
            packed[j] = dataclasses.replace(p, ref_chosen=float(ref[row]), ref_rejected=float(ref[len(rows) + row]))
        done_tokens += sum(len(p.ids) for p in rows)
        say(0.02 + 0.98 * done_tokens / all_tokens, f"cached {done_tokens}/{all_tokens} tokens")
    policy.train()
    return Prepared(
        settings=settings,
        base=model,
        model=policy,
        pairs=packed,
        encoded=encoded,
        probe=probe_indices(len(pairs), settings.probe_pairs),
        prepare_seconds=time.perf_counter() - started,
        truncated=truncated,
    )
