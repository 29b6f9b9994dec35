"""The masked-LM encoder: BERT's corruption rule, the loss on masked positions, parity with transformers'
BertForMaskedLM (random and trained weights), the exported folder in AutoTokenizer and the fill-mask
pipeline, fill_mask's errors, the training job, and the attention masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from backends import architectures as arch
from backends.core.jobs import STOPPED, shared_runner
from backends.scratch_gpt import (
    IGNORE,
    CharTokenizer,
    Encoder,
    GPTConfig,
    MaskedVocab,
    TrainSettings,
    load_corpus,
    mask_tokens,
    prepare,
)

SMALL = GPTConfig(block_size=32, n_layer=2, n_head=4, n_embd=32)
SHORT = TrainSettings(
    max_iters=40, batch_size=8, learning_rate=3e-3, warmup_iters=5, lr_decay_iters=40, eval_interval=20, eval_iters=3
)


@pytest.fixture(scope="module")
def trained():
    """A briefly trained encoder on shakespeare (the real job)."""
    prepared = prepare("shakespeare", load_corpus("shakespeare"), SMALL.block_size)
    job = shared_runner().submit("mlm-test", arch.mlm_job, prepared, SMALL, SHORT)
    assert job.wait(600) and job.error is None, job.error
    return job


def test_mask_tokens_follows_bert():
    vocab = MaskedVocab(CharTokenizer(list("abcdefghij")))
    ids = torch.randint(1, 11, (400, 500), generator=torch.Generator().manual_seed(0))
    inputs, labels = mask_tokens(ids, vocab, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE
    assert abs(chosen.float().mean().item() - 0.15) < 0.005
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    masked = (inputs == vocab.mask_id)[chosen].float().mean().item()
    same = (inputs == ids)[chosen].float().mean().item()
    other = ((inputs != ids) & (inputs != vocab.mask_id))[chosen].float().mean().item()
    assert abs(masked - 0.8) < 0.01
    assert abs(same - (0.1 + 0.1 / 10)) < 0.01  # kept, or a random character that happens to be the same
    assert abs(other - 0.1 * 9 / 10) < 0.01
    assert inputs[inputs != vocab.mask_id].min() >= 1 and inputs[inputs != vocab.mask_id].max() <= 10  # no UNK/PAD
    again = mask_tokens(ids, vocab, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)


def test_loss_is_on_masked_positions_and_attention_sees_both_ways():
    config = GPTConfig(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=16)
    model = Encoder(config, torch.Generator().manual_seed(0)).eval()
    ids = torch.randint(0, 13, (2, 16), generator=torch.Generator().manual_seed(1))
    labels = torch.full_like(ids, IGNORE)
    labels[0, 3], labels[1, 10] = 5, 7
    full, _ = model(ids)
    _, loss = model(ids, labels)
    by_hand = (F.cross_entropy(full[0, 3], torch.tensor(5)) + F.cross_entropy(full[1, 10], torch.tensor(7))) / 2
    torch.testing.assert_close(loss, by_hand)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 13
    assert not torch.allclose(model(changed)[0][:, 0], full[:, 0])  # the first token sees the last one


def shaken(model: Encoder, seed: int) -> Encoder:
    """Every parameter moved off its initial value (norm weights off 1, biases off 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


def test_random_weights_match_bert_for_masked_lm():
    from transformers import BertForMaskedLM

    config = GPTConfig(vocab_size=40, block_size=24, n_layer=3, n_head=4, n_embd=32)
    model = shaken(Encoder(config, torch.Generator().manual_seed(0)), 1)
    bert = arch.to_bert(model)
    assert isinstance(bert, BertForMaskedLM)
    ids = torch.randint(0, 40, (3, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], bert(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
        # padding: our pad_mask is BERT's attention_mask
        keep = torch.ones(3, 24, dtype=torch.bool)
        keep[1, 15:] = False
        ours = model(ids, pad_mask=keep)[0]
        theirs = bert(input_ids=ids, attention_mask=keep.long()).logits
        torch.testing.assert_close(ours[keep], theirs[keep], atol=1e-5, rtol=1e-5)


def test_trained_encoder_exports_to_bert(trained, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    run = trained.result
    folder = arch.export_bert(run.model, run.vocab, tmp_path / "bert")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    bert = AutoModelForMaskedLM.from_pretrained(folder).eval()
    assert type(bert).__name__ == "BertForMaskedLM"
    text = load_corpus("shakespeare")[:2000]
    assert tokenizer(text, add_special_tokens=True)["input_ids"] == run.vocab.encode(text)  # no [CLS]/[SEP]
    ids = torch.tensor([run.vocab.encode(text[:32]), run.vocab.encode(text[500:532])])
    with torch.no_grad():
        torch.testing.assert_close(run.model(ids)[0], bert(input_ids=ids).logits, atol=1e-5, rtol=1e-5)

    sentence = "First Citizen:\nBefore we pr_ceed"
    ours = arch.fill_mask(run.model, run.vocab, sentence, top_k=5)
    fill = pipeline("fill-mask", model=bert, tokenizer=tokenizer)
    theirs = fill(sentence.replace("_", "[MASK]"), top_k=5)
    assert [c for c, _ in ours[0].predictions] == [r["token_str"] for r in theirs]
    np.testing.assert_allclose([p for _, p in ours[0].predictions], [r["score"] for r in theirs], atol=1e-5)


def test_tokenizer_ids_on_both_corpora(tmp_path):
    from transformers import AutoTokenizer

    for corpus in ("shakespeare", "tang_song"):
        text = load_corpus(corpus)
        vocab = MaskedVocab(CharTokenizer.from_text(text))
        config = GPTConfig(vocab_size=vocab.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=8)
        folder = arch.export_bert(Encoder(config), vocab, tmp_path / corpus)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        every = "".join(vocab.itos[1:-2])  # each character of the corpus once, in id order
        assert tokenizer(every)["input_ids"] == list(range(1, vocab.chars.vocab_size))
        assert tokenizer("a[MASK]b" if corpus == "shakespeare" else "明[MASK]光")["input_ids"][1] == vocab.mask_id
        assert tokenizer.mask_token_id == vocab.mask_id and tokenizer.pad_token_id == vocab.pad_id


def test_fill_mask_answers_and_errors(trained):
    run = trained.result
    blanks = arch.fill_mask(run.model, run.vocab, "To be, or not to b_, that is t[MASK]e", top_k=3)
    assert [b.position for b in blanks] == [18, 30]
    for b in blanks:
        assert len(b.predictions) == 3 and all(0 <= p <= 1 for _, p in b.predictions)
        assert [p for _, p in b.predictions] == sorted((p for _, p in b.predictions), reverse=True)
    for text, code in (("", "empty"), ("   ", "empty"), ("no blank here", "no_blank"), ("caf_é", "unknown")):
        with pytest.raises(ValueError) as err:
            arch.fill_mask(run.model, run.vocab, text)
        assert err.value.code == code
    with pytest.raises(ValueError, match="at most 32") as err:
        arch.fill_mask(run.model, run.vocab, "a" * 40 + "_")
    assert err.value.code == "too_long"


def test_mlm_job_learns_and_reports(trained):
    events = [e.data for e in trained.events_since(0)]
    steps = [e for e in events if e["kind"] == "step"]
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in steps] == list(range(1, 41)) and events[-1]["kind"] == "end"
    assert [e["step"] for e in evals] == [0, 20, 40]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    assert 2.5 < evals[0]["unigram"] < 4.0  # the character frequencies of English text: about 3.3 nats
    # the same seed gives the same run
    prepared = prepare("shakespeare", load_corpus("shakespeare"), SMALL.block_size)
    again = shared_runner().submit("mlm-test", arch.mlm_job, prepared, SMALL, SHORT)
    assert again.wait(600) and again.error is None
    assert [e.data.get("loss") for e in again.events_since(0)] == [e.get("loss") for e in events]


def test_stop_keeps_the_model():
    prepared = prepare("tang_song", load_corpus("tang_song"), SMALL.block_size)
    settings = TrainSettings(max_iters=5000, batch_size=4, eval_iters=1, eval_interval=0)
    job = shared_runner().submit("mlm-test", arch.mlm_job, prepared, SMALL, settings)
    while not any(e.data.get("kind") == "step" for e in job.events_since(0)):
        job.wait(0.05)
    job.stop()
    assert job.wait(120)
    assert job.status in (STOPPED, "done") and job.result is not None
    assert 0 < job.result.step < 5000
    assert arch.fill_mask(job.result.model, job.result.vocab, "床前明_光")[0].predictions


def test_attention_masks():
    masks = arch.attention_masks(6)
    assert np.array(masks["bidirectional"]).all()
    assert (np.array(masks["causal"]) == np.tril(np.ones((6, 6), dtype=bool))).all()
