"""The seq2seq tasks (pinyin, couplets): real pairs from the shipped poems, cross-attention against torch's
attention, the model's masks, a real (short) training run, greedy and beam search against
transformers' generate() on the exported Blenderbot folder, and the logits equal to 1e-5."""

from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from backends.architectures.couplets import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    Vocab,
    couplet_pairs,
    held_out,
    make_batch,
    pinyin_pairs,
    task_pairs,
)
from backends.architectures.export_blenderbot import export_seq2seq
from backends.architectures.seq2seq_decode import (
    beam_search,
    check_input,
    cross_attention_map,
    greedy,
    greedy_batch,
    translate,
)
from backends.architectures.seq2seq_run import SEQ2SEQ_SETTINGS, seq2seq_job
from backends.core.jobs import shared_runner
from backends.scratch_gpt import CrossAttention, GPTConfig, Seq2Seq, load_corpus

SMALL = GPTConfig(block_size=16, n_layer=2, n_head=4, n_embd=64, dropout=0.0)
QUICK = replace(
    SEQ2SEQ_SETTINGS,
    max_iters=150,
    lr_decay_iters=150,
    warmup_iters=20,
    eval_interval=50,
    learning_rate=2e-3,
    min_lr=2e-4,
)


class Ctx:
    def __init__(self, stop_after=None):
        self.events, self.stop_after = [], stop_after

    @property
    def stopped(self):
        steps = sum(e["kind"] == "step" for e in self.events)
        return self.stop_after is not None and steps >= self.stop_after

    def report(self, progress=None, message="", **data):
        self.events.append(data)


@pytest.fixture(scope="module")
def trained():
    job = shared_runner().submit("seq2seq-test", seq2seq_job, SMALL, QUICK, 3, False, "couplet")
    assert job.wait(600) and job.status == "done", job.error
    return job.result, [e.data for e in job.events_since(0)]


def test_pairs_are_real_half_lines_split_by_poem():
    train, held = couplet_pairs()
    text = load_corpus("tang_song")
    assert len(train) > 1500 and 150 < len(held) < 300
    assert not {p.poem for p in train} & {p.poem for p in held}
    for p in (*train[:50], *held):
        assert len(p.src) == len(p.tgt) in (5, 7)
        assert f"{p.src}，{p.tgt}" in text  # the line as the corpus has it
    assert ("床前明月光", "疑是地上霜") in {(p.src, p.tgt) for p in train + held}


def test_pinyin_pairs_are_hand_checked_readings_split_by_poem():
    train, held = pinyin_pairs()
    assert task_pairs("pinyin") == (train, held) and task_pairs("couplet") == couplet_pairs()
    assert len(train) > 3000 and 300 < len(held) < 600
    assert not {p.poem for p in train} & {p.poem for p in held}
    assert {p.poem for p in couplet_pairs()[1]} <= {p.poem for p in held}  # the couplets' held-out poems
    assert all(held_out(p.poem) for p in held) and not any(held_out(p.poem) for p in train)
    readings = {p.src: p.tgt for p in train + held}
    # checked by hand in a dictionary: chuáng qián míng yuè guāng, jǔ tóu wàng míng yuè, huáng hé rù hǎi liú
    assert readings["床前明月光"] == "chuang2 qian2 ming2 yue4 guang1"
    assert readings["举头望明月"] == "ju3 tou2 wang4 ming2 yue4"
    assert readings["黄河入海流"] == "huang2 he2 ru4 hai3 liu2"
    text = load_corpus("tang_song")
    for p in (*train[:200], *held):
        assert p.src in text and len(p.tgt.split()) == len(p.src)  # one syllable per character
        assert set(p.tgt) <= set("abcdefghijklmnopqrstuvwxyzü12345 ") and p.tgt[-1] in "12345"
    vocab = Vocab.from_pairs(train, "pinyin")
    assert vocab.unknown("床前明月光") == [] and vocab.unknown("chuang床") == ["a", "c", "g", "h", "n", "u"]
    allowed = set(vocab.output_ids(train))
    assert all(vocab.stoi[c] in allowed for p in held for c in p.tgt) and vocab.stoi["床"] not in allowed


def test_vocab_and_batches_pad_right_with_bos_and_eos():
    train, _ = couplet_pairs()
    vocab = Vocab.from_pairs(train)
    assert vocab.itos[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert vocab.unknown("床前明月光") == [] and vocab.unknown("床前ABC") == ["A", "B", "C"]
    pairs = [p for p in train if len(p.src) == 5][:1] + [p for p in train if len(p.src) == 7][:1]
    src, tgt, targets = make_batch(pairs, vocab)
    assert src.shape == (2, 7) and tgt.shape == targets.shape == (2, 8)
    assert src[0, 5:].tolist() == [PAD_ID, PAD_ID] and (src[1] != PAD_ID).all()
    assert tgt[:, 0].tolist() == [BOS_ID, BOS_ID] and targets[0, 5] == EOS_ID and targets[1, 7] == EOS_ID
    assert torch.equal(tgt[:, 1:6], targets[:, :5])  # the decoder predicts one position ahead
    assert vocab.decode(targets[0].tolist()) == pairs[0].tgt


def test_cross_attention_equals_torch_attention_and_hides_padding():
    torch.manual_seed(0)
    attn = CrossAttention(SMALL).eval()
    x, memory = torch.randn(2, 4, 64), torch.randn(2, 6, 64)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    y, weights = attn(x, memory, mask, return_weights=True)
    q = attn.c_q(x).view(2, 4, 4, 16).transpose(1, 2)
    k, v = (z.view(2, 6, 4, 16).transpose(1, 2) for z in attn.c_kv(memory).split(64, dim=2))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    assert torch.allclose(y, attn.c_proj(ref.transpose(1, 2).reshape(2, 4, 64)), atol=1e-6)
    assert weights.shape == (2, 4, 4, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 4)) and (weights[1, :, :, 3:] == 0).all()


def test_encoder_sees_both_ways_decoder_only_back_and_padding_changes_nothing():
    model = Seq2Seq(replace(SMALL, vocab_size=50), torch.Generator().manual_seed(0)).eval()
    src, tgt = torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([[1, 10, 11, 12]])
    with torch.no_grad():
        mask = src != PAD_ID
        changed = src.clone()
        changed[0, 4] = 20
        assert not torch.allclose(model.encode(src, mask)[0, 0], model.encode(changed, mask)[0, 0])
        logits = model(src, tgt)[0]
        later = tgt.clone()
        later[0, 3] = 30
        assert torch.allclose(logits[0, :3], model(src, later)[0][0, :3], atol=1e-6)
        padded = model(torch.tensor([[5, 6, 7, 8, 9, PAD_ID, PAD_ID]]), tgt)[0]
        assert torch.allclose(logits, padded, atol=1e-5)
        targets = torch.tensor([[10, 11, 2, PAD_ID]])
        _, loss = model(src, tgt, targets)
        assert loss.item() == pytest.approx(F.cross_entropy(logits[0, :3], targets[0, :3]).item(), rel=1e-6)


def test_training_learns_is_seeded_and_stops(trained):
    run, events = trained
    evals = run.evals()
    assert [e["step"] for e in evals] == [0, 50, 100, 150]
    assert min(e["val_loss"] for e in evals[1:]) < evals[0]["val_loss"] - 1.0
    assert evals[-1]["train_loss"] < evals[0]["train_loss"] - 1.5
    assert all(len(s["out"]) > 0 for s in evals[-1]["samples"])
    # early stopping: the weights kept are those of the evaluation with the lowest validation loss
    assert run.val_loss == min(e["val_loss"] for e in evals) and run.best_step in (50, 100, 150)
    _, held = couplet_pairs()
    src, tgt, targets = make_batch(list(held), run.vocab)
    with torch.no_grad():
        logits = run.model.eval()(src, tgt)[0]
    by_hand = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD_ID)
    assert by_hand.item() == pytest.approx(run.val_loss, rel=1e-4)
    assert events[-1]["kind"] == "end" and sum(e["kind"] == "step" for e in events) == 150
    again = seq2seq_job(Ctx(stop_after=20), SMALL, QUICK, 3, False, "couplet")
    steps = [e["loss"] for e in run.history if e["kind"] == "step"][:20]
    # the same batches and initial weights; only the job's thread count may change float rounding
    assert again.step == 20 and [e["loss"] for e in again.history if e["kind"] == "step"] == pytest.approx(steps)
    assert again.history[-1]["stopped"] is True


def test_greedy_and_beam_equal_transformers_generate(trained, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    run, _ = trained
    model, vocab = run.model, run.vocab
    folder = export_seq2seq(model, vocab, tmp_path / "couplets")
    hf = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    assert type(hf).__name__ == "BlenderbotForConditionalGeneration"
    _, held = couplet_pairs()
    src, tgt, _ = make_batch(list(held[:32]), vocab)
    assert tok([p.src for p in held[:32]], padding=True, return_tensors="pt")["input_ids"].tolist() == src.tolist()
    with torch.no_grad():
        ours = model(src, tgt)[0]
        theirs = hf(input_ids=src, attention_mask=(src != PAD_ID).long(), decoder_input_ids=tgt).logits
    assert (ours - theirs).abs().max() < 1e-5
    beams_differ = 0
    for p in held[:12]:
        inputs = tok(p.src, return_tensors="pt")
        n = len(p.src) + 3
        g = greedy(model, vocab, p.src)
        out = hf.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=n)
        assert out[0, 1:].tolist()[: len(g.ids)] == g.ids and tok.decode(out[0], skip_special_tokens=True) == g.text
        b = beam_search(model, vocab, p.src, beam=3, length_penalty=1.0)
        res = hf.generate(
            **inputs, num_beams=3, do_sample=False, max_new_tokens=n, early_stopping=True, length_penalty=1.0,
            output_scores=True, return_dict_in_generate=True,
        )  # fmt: skip
        assert res.sequences[0, 1 : 1 + len(b.ids)].tolist() == b.ids, p.src
        assert res.sequences_scores[0].item() == pytest.approx(b.score, abs=1e-4)
        beams_differ += b.ids != g.ids
    assert beams_differ > 0  # beam search found other outputs than greedy for some inputs
    # the held-out table decodes greedily in padded batches: the same outputs as one input at a time
    batch = greedy_batch(model, vocab, [p.src for p in held[:24]], chunk=10)
    for p, g in zip(held[:24], batch):
        one = greedy(model, vocab, p.src)
        assert g.ids == one.ids and g.logprob == pytest.approx(one.logprob, abs=1e-4)


def test_random_weights_export_equal_logits(tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    train, held = couplet_pairs()
    vocab = Vocab.from_pairs(train)
    model = Seq2Seq(replace(SMALL, vocab_size=vocab.size, n_layer=3), torch.Generator().manual_seed(3)).eval()
    with torch.no_grad():
        for p in model.parameters():  # away from the neat initial values (zero biases, unit norms)
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    hf = AutoModelForSeq2SeqLM.from_pretrained(export_seq2seq(model, vocab, tmp_path / "random")).eval()
    src, tgt, _ = make_batch(list(held[:16]), vocab)
    with torch.no_grad():
        diff = model(src, tgt)[0] - hf(input_ids=src, attention_mask=(src != 0).long(), decoder_input_ids=tgt).logits
    assert diff.abs().max() < 1e-5


def test_page_helpers_validate_and_map_attention(trained):
    run, _ = trained
    model, vocab = run.model, run.vocab
    for bad, message in (("  ", "Type a"), ("床前明月光床前明月光", "at most 9"), ("床前ABC", "A B C")):
        with pytest.raises(ValueError, match=message):
            translate(model, vocab, bad)
    assert check_input(vocab, " 床前明月光，") == "床前明月光"
    one, four = translate(model, vocab, "床前明月光"), translate(model, vocab, "床前明月光", beam=4)
    assert one.text and four.text and four.logprob <= 0 and one.score == one.logprob
    maps = cross_attention_map(model, vocab, "床前明月光", one.text)
    assert maps.shape == (2, 4, len(one.text) + 1, 5)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, len(one.text) + 1), atol=1e-5)


def test_pinyin_model_exports_equal_logits_and_generate(tmp_path):
    """Random weights (no training: fast) with the pinyin output restriction: transformers gives the same
    logits (-inf for Chinese characters as ours), the tokenizer keeps the spaces, generate() the same ids."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    train, held = pinyin_pairs()
    vocab = Vocab.from_pairs(train, "pinyin")
    model = Seq2Seq(replace(SMALL, block_size=72, vocab_size=vocab.size), torch.Generator().manual_seed(5)).eval()
    model.only_output(vocab.output_ids(train))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    folder = export_seq2seq(model, vocab, tmp_path / "pinyin")
    hf, tok = AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    src, tgt, _ = make_batch(list(held[:16]), vocab)
    with torch.no_grad():
        ours = model(src, tgt)[0]
        theirs = hf(input_ids=src, attention_mask=(src != 0).long(), decoder_input_ids=tgt).logits
    finite = torch.isfinite(ours)
    assert torch.equal(finite, torch.isfinite(theirs)) and finite[..., vocab.stoi["床"]].sum() == 0
    assert (ours[finite] - theirs[finite]).abs().max() < 1e-5
    assert tok.decode(tgt[0, 1:].tolist(), skip_special_tokens=True) == held[0].tgt  # spaces kept
    for p in held[:3]:
        g = greedy(model, vocab, p.src)
        out = hf.generate(**tok(p.src, return_tensors="pt"), num_beams=1, do_sample=False,
                          max_new_tokens=vocab.max_out(len(p.src)))  # fmt: skip
        assert out[0, 1:].tolist()[: len(g.ids)] == g.ids
        assert tok.decode(out[0], skip_special_tokens=True) == g.text
