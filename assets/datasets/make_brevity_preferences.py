"""Writes brevity_preferences.jsonl: DPO pairs that teach SmolLM2-135M-Instruct to stop early.

For each training prompt the base model answers greedily (chat template, at most 64 new tokens,
batched with left padding by backends.alignment.rule.generate_answers). Then:
- chosen   = that same answer cut after its last complete sentence ending within the first
             MAX_WORDS words (the prompt is skipped when no complete sentence of >= 3 words
             fits);
- rejected = the full answer, kept only when it has more than MAX_WORDS words.
Both sides are the model's own words: one stops early, the other goes on. The rule is in
backends/alignment/rule.py. Greedy decoding on one CPU thread is deterministic: a rerun writes
the same file.
Run: PYTHONPATH=. python assets/datasets/make_brevity_preferences.py   (about 5 minutes on 1 core)
"""

import json
import re
import time
from collections import Counter
from pathlib import Path

import torch

from backends.alignment.pairs import Pair, parse_jsonl
from backends.alignment.rule import MAX_WORDS, generate_answers, word_count
from backends.models.cache import shared_cache

HERE = Path(__file__).resolve().parent
OUT = HERE / "brevity_preferences.jsonl"
SOURCE = HERE / "pirate_instructions.jsonl"  # its prompts (ours); the pirate answers are not used
MODEL = "smollm2-135m-instruct"
MAX_NEW_TOKENS = 64
MIN_SENTENCE_WORDS = 3
# A word ending in one of these is not the end of a sentence.
ABBREVIATIONS = {"e.g.", "i.e.", "mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "approx.", "no.", "fig."}
SENTENCE_END = re.compile(r"[.!?][\"')\]*]*$")
LIST_MARKER = re.compile(r"^(\d+|[a-zA-Z])\.$")  # "1." or "a." opening a list item

EXTRA_PROMPTS = [  # ours: more open questions, which the model answers at length
    "How does a refrigerator keep food cold?",
    "Why do onions make you cry?",
    "What is a calorie?",
    "How do vaccines work?",
    "What is the difference between weather and climate?",
    "Why do we yawn?",
    "How do bicycles stay upright?",
    "What is inflation?",
    "How does a microwave oven heat food?",
    "Why is exercise good for the heart?",
    "What is a black hole?",
    "What is recycling and why does it matter?",
    "How do I write a good email to a teacher?",
    "How can I stop procrastinating?",
    "What are the benefits of walking every day?",
    "How does a solar panel work?",
    "What is a budget?",
    "Why do people get sunburned?",
    "How do plants drink water?",
    "What is an earthquake?",
    "How do I fix a flat bicycle tyre?",
    "What should I pack for a picnic?",
    "How can I make my handwriting neater?",
    "What is democracy?",
    "Why do we have time zones?",
    "How does the stomach digest food?",
    "What is a habit, and how do I build a good one?",
    "How do I start learning to play the guitar?",
    "What is the difference between a virus and a bacterium?",
    "Why do metals feel cold to the touch?",
    "How do I prepare for a job interview?",
    "What is a healthy way to lose weight?",
    "Explain what DNA is.",
    "How does a smartphone camera work?",
    "Why can we sometimes see the Moon during the day?",
    "What is compound interest?",
    "How can I be a better listener?",
    "What is the greenhouse effect?",
    "Why do we dream?",
    "How do I keep my laptop running fast?",
    "What is a museum for?",
    "How do fireflies glow?",
    "Explain why ice floats on water.",
    "What is a good way to learn new vocabulary?",
    "How do I make a simple salad?",
    "What causes thunder?",
    "Why do dogs wag their tails?",
    "How is paper made?",
    "What is an allergy?",
    "How can I reduce plastic waste at home?",
    "Why do we need vitamins?",
    "How do trains stay on their tracks?",
    "What makes a good team leader?",
    "Explain what a website is.",
    "How do I care for a pet goldfish?",
    "What is the purpose of a library?",
    "Why does bread go stale?",
    "How can I stay safe when riding a bike at night?",
    "What is the water cycle?",
    "How does a lock and key work?",
    "What is a fossil?",
    "Why do some animals hibernate?",
    "How do I write a thank-you note?",
    "What are the benefits of learning music?",
    "How does soap clean dirty hands?",
    "What is an election?",
    "Why does the wind blow?",
    "How do I stay motivated to exercise?",
    "What do the lungs do?",
    "What is a telescope used for?",
    "Explain how a candle burns.",
    "How do I make a cup of hot chocolate?",
    "What is a haiku?",
    "Why is sugar bad for teeth?",
    "How do I plan a birthday party?",
    "What does a farmer do?",
    "How does an elevator work?",
    "What is the difference between a lake and a sea?",
    "How do I choose a good book to read?",
    "Why do people celebrate New Year?",
]


def sentence_ends(text: str) -> list[tuple[int, int]]:
    """(words so far, character offset) after each word that ends a sentence."""
    ends = []
    for n, match in enumerate(re.finditer(r"\S+", text), 1):
        word = match.group(0)
        if SENTENCE_END.search(word) and not LIST_MARKER.match(word) and word.lower() not in ABBREVIATIONS:
            ends.append((n, match.end()))
    return ends


def cut(text: str) -> str | None:
    """The answer up to its last sentence end within MAX_WORDS words, or None when none fits."""
    ends = [(n, end) for n, end in sentence_ends(text) if n <= MAX_WORDS]
    if not ends:
        return None
    kept = text[: ends[-1][1]].strip()
    sizes, before = [], 0
    for n, _ in sentence_ends(kept):
        sizes.append(n - before)
        before = n
    return kept if max(sizes) >= MIN_SENTENCE_WORDS else None


def training_prompts() -> list[str]:
    prompts = [json.loads(line)["prompt"] for line in SOURCE.read_text(encoding="utf-8").splitlines() if line]
    seen, unique = set(), []
    for p in prompts + EXTRA_PROMPTS:
        if p.lower() not in seen:
            seen.add(p.lower())
            unique.append(p)
    return unique


def main() -> None:
    torch.set_num_threads(1)
    loaded = shared_cache().get(MODEL)
    prompts = training_prompts()
    start = time.perf_counter()
    answers = generate_answers(loaded.model, loaded.tokenizer, prompts, max_new_tokens=MAX_NEW_TOKENS, batch_size=16)
    took = time.perf_counter() - start
    pairs, skipped = [], Counter()
    for a in answers:
        if word_count(a.text) <= MAX_WORDS:
            short = "already follows the rule" if a.follows else "short, but no end-of-turn token"
            skipped[f"{short} ({MAX_WORDS} words or fewer: nothing to cut)"] += 1
            continue
        chosen = cut(a.text)
        if chosen is None:
            skipped[f"no complete sentence of >= {MIN_SENTENCE_WORDS} words within {MAX_WORDS} words"] += 1
            continue
        pairs.append(Pair(a.prompt, chosen, a.text))
    text = "".join(json.dumps(p.row(), ensure_ascii=False) + "\n" for p in pairs)
    assert len(parse_jsonl(text)) == len(pairs)
    OUT.write_text(text, encoding="utf-8")
    stopped = sum(a.stopped for a in answers)
    print(f"{len(prompts)} prompts answered in {took:.0f} s ({stopped} stopped within {MAX_NEW_TOKENS} tokens)")
    print(f"kept {len(pairs)} pairs")
    for why, n in skipped.most_common():
        print(f"skipped {n}: {why}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
