"""Contrastive search (Su et al. 2022, "A Contrastive Framework for Neural Text Generation").

At each step take the k most likely next tokens (k = `top_k`), run the model once more with
each appended, and pick the one with the best

    (1 - alpha) * p(token)  -  alpha * max cosine similarity(its hidden state, every earlier hidden state)

so a token the model is confident about wins unless it would make the text repeat itself
(a repeated phrase has hidden states close to the ones it repeats). The hidden states are the
model's last layer (after its final norm), for the prompt and every generated token.

transformers 5 moved contrastive search out of its core into a hub `custom_generate` repo
(network and trust_remote_code), so it is written here; tests/backends/test_decoding.py checks
it against a brute-force version that re-runs the whole text for every candidate. Here the k
candidates share one forward pass: the KV cache is copied k times, and the winner's row kept.
"""

from __future__ import annotations

import torch

from backends.core.scheduler import shared_scheduler
from backends.decoding.sampling import process_logits
from backends.decoding.steps import (
    Candidate,
    TextTracker,
    eos_ids,
    inference_steps,
    model_device,
    new_cache,
    token_step,
)


def contrastive_scores(probs: torch.Tensor, candidate_h: torch.Tensor, context_h: torch.Tensor, alpha: float):
    """Su et al. (2022): model confidence minus a degeneration penalty.

    probs [k]: each candidate's probability; candidate_h [k, d]: the last hidden state with the
    candidate appended; context_h [t, d]: the hidden states of every earlier token. The penalty
    is the candidate's highest cosine similarity to the context: repeating what was said scores low.
    """
    sim = torch.nn.functional.normalize(candidate_h, dim=-1) @ torch.nn.functional.normalize(context_h, dim=-1).T
    similarity = sim.max(dim=-1).values
    return (1 - alpha) * probs - alpha * similarity, similarity


@inference_steps
def contrastive_stream(loaded, prompt_ids, config, should_stop, top_n, forced_first, start_index):
    """The token loop of contrastive search; called by `generate_stream` (same arguments, same `TokenStep`s)."""
    model, stop_ids, text = loaded.model, eos_ids(loaded), TextTracker(loaded.tokenizer)
    base, head = model.base_model, model.get_output_embeddings()
    ids = list(prompt_ids)
    cache = new_cache(loaded)
    with shared_scheduler().turn("decode"):
        out = base(input_ids=torch.tensor([ids], device=model_device(loaded)), past_key_values=cache, use_cache=True)
    context_h = out.last_hidden_state[0]  # [t, d]
    logits = head(context_h[-1]).float()
    for step in range(config.max_new_tokens):
        if should_stop is not None and should_stop():
            return
        scores = process_logits(logits, ids, config)
        probs = scores.softmax(dim=-1)
        if step == 0 and forced_first is not None:
            cand_ids = torch.tensor([forced_first], device=probs.device)
        else:
            cand_ids = torch.topk(probs, config.top_k).indices
        k = len(cand_ids)
        cache.batch_repeat_interleave(k)  # one copy of the context per candidate
        mask = torch.ones(k, len(ids) + 1, dtype=torch.long, device=probs.device)
        with shared_scheduler().turn("decode"):
            cand_h = base(
                input_ids=cand_ids[:, None], attention_mask=mask, past_key_values=cache, use_cache=True
            ).last_hidden_state[:, -1]
        score, similarity = contrastive_scores(probs[cand_ids], cand_h, context_h, config.penalty_alpha)
        best = int(torch.argmax(score))
        cache.batch_select_indices(torch.tensor([best], device=probs.device))
        token = int(cand_ids[best])
        candidates = [
            Candidate(int(c), loaded.tokenizer.decode([int(c)]), float(p), float(s), float(v))
            for c, p, s, v in zip(cand_ids, probs[cand_ids], similarity, score)
        ]
        yield token_step(loaded, start_index + step, token, logits, scores, top_n, text, candidates)
        ids.append(token)
        if token in stop_ids:
            return
        context_h = torch.cat([context_h, cand_h[best : best + 1]])
        logits = head(cand_h[best]).float()
