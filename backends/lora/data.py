"""Instruction data for LoRA: the shipped set, uploads, the chat template and masked labels.

An example is either a chat (role, content pairs) or a plain text. Chats are trained on the
assistant replies only: every prompt token gets the label -100, which the loss ignores, so
the model learns to answer rather than to repeat the question.
"""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
from dataclasses import dataclass

import torch

from backends.core.coded import CodedError
from backends.core.paths import ASSETS
from backends.lora.config import LOSS_ON

SHIPPED = ASSETS / "datasets" / "pirate_instructions.jsonl"
IGNORE = -100
ROLES = ("system", "user", "assistant")
PROMPT_COLUMNS = ("prompt", "instruction", "question")
RESPONSE_COLUMNS = ("response", "output", "answer", "completion")
# A template-less base model (GPT-2 style) gets this plain layout instead of a chat template.
FALLBACK_USER, FALLBACK_ASSISTANT = "### Instruction:\n{}\n\n", "### Response:\n{}"


class DataError(CodedError, ValueError):
    """A dataset the trainer cannot use; the message says which line or column and what to do (a page
    words its `code` in its language: `lora.data.error.<code>`)."""


@dataclass(frozen=True)
class Example:
    messages: tuple[tuple[str, str], ...] = ()  # (role, content); empty for a plain text
    text: str = ""

    @property
    def is_chat(self) -> bool:
        return bool(self.messages)

    def prompt(self) -> str:
        return next((c for r, c in self.messages if r == "user"), self.text)

    def response(self) -> str:
        return next((c for r, c in reversed(self.messages) if r == "assistant"), "")

    def as_row(self) -> dict:
        if self.is_chat:
            return {"prompt": self.prompt(), "response": self.response(), "turns": len(self.messages)}
        return {"text": self.text}


@dataclass(frozen=True)
class Encoded:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    truncated: bool

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def record_to_example(record, where: str) -> Example:
    """One JSON object or CSV row: prompt/response columns, a chat `messages` list, or `text`."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with prompt/response, messages or text, got {record!r:.80}.")
    keys = {str(k).strip().lower(): v for k, v in record.items()}
    if keys.get("messages") not in (None, ""):
        messages = keys["messages"]
        if isinstance(messages, str):  # a CSV cell holding JSON
            try:
                messages = json.loads(messages)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: the messages cell is not JSON ({exc.msg}): {messages!r:.80}.") from exc
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{where}: messages must be a non-empty list of {{role, content}}, got {messages!r:.80}.")
        turns = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise DataError(
                    f"{where}: each message needs a role ({', '.join(ROLES)}) and a text content; got {m!r:.80}."
                )
            turns.append((m["role"], m["content"]))
        if not any(r == "assistant" and c.strip() for r, c in turns):
            raise DataError(f"{where}: the chat has no assistant reply to learn from: {messages!r:.80}.")
        return Example(messages=tuple(turns))
    prompt = next((keys[c] for c in PROMPT_COLUMNS if keys.get(c) not in (None, "")), None)
    response = next((keys[c] for c in RESPONSE_COLUMNS if keys.get(c) not in (None, "")), None)
    if prompt is not None and response is not None:
        return Example(messages=(("user", str(prompt)), ("assistant", str(response))))
    if isinstance(keys.get("text"), str) and keys["text"].strip():
        return Example(text=keys["text"])
    found = ", ".join(sorted(keys)) or "none"
    raise DataError(
        f"{where}: no usable columns (found: {found}). Give prompt + response, a chat `messages` "
        f"list, or a `text` column."
    )


def parse_jsonl(text: str) -> list[Example]:
    examples, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            examples.append(record_to_example(json.loads(line), f"line {number}"))
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno}): {line.strip()!r:.60}")
        except DataError as exc:
            errors.append(str(exc))
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise DataError(
            f"{len(errors)} bad line(s){more}; fix them and upload again:\n" + "\n".join(errors[:5]),
            "bad_lines",
            n=len(errors),
            lines="\n".join(errors[:5]),
        )
    return _not_empty(examples)


def parse_csv(text: str) -> list[Example]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise DataError(
            "The CSV file has no header row: its first line must name the columns "
            "(prompt,response or messages or text).",
            "no_header",
        )
    examples = [
        record_to_example(row, f"row {n}")
        for n, row in enumerate(reader, 2)
        if any((v or "").strip() for v in row.values() if isinstance(v, str))
    ]
    return _not_empty(examples)


def parse_upload(name: str, data: bytes) -> list[Example]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name!r} is not UTF-8 text (byte {exc.start}): save it as UTF-8 and upload again.",
            "not_utf8",
            name=name,
            byte=exc.start,
        ) from exc
    lower = name.lower()
    if lower.endswith((".jsonl", ".json")):
        return parse_jsonl(text)
    if lower.endswith(".csv"):
        return parse_csv(text)
    raise DataError(f"{name!r}: unsupported file type; upload .jsonl or .csv.", "file_type", name=name)


def shipped_examples() -> list[Example]:
    return parse_jsonl(SHIPPED.read_text(encoding="utf-8"))


def _not_empty(examples: list[Example]) -> list[Example]:
    if not examples:
        raise DataError("The dataset is empty: it holds no examples. Add at least one prompt/response pair.", "empty")
    return examples


def _template_ids(tokenizer, messages, generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(
        [{"role": r, "content": c} for r, c in messages],
        tokenize=True,
        add_generation_prompt=generation_prompt,
        return_dict=True,
    )["input_ids"]
    return list(ids)


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_example(tokenizer, example: Example) -> str:
    """The exact training text: what the chat template makes of the example."""
    if not example.is_chat:
        return example.text + (tokenizer.eos_token or "")
    if has_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in example.messages], tokenize=False)
    return "".join(
        FALLBACK_USER.format(c) if r != "assistant" else FALLBACK_ASSISTANT.format(c) + (tokenizer.eos_token or "")
        for r, c in example.messages
    )


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """A user prompt ready for generation, laid out as in training."""
    if has_template(tokenizer):
        return _template_ids(tokenizer, [("user", prompt)], generation_prompt=True)
    return list(tokenizer(FALLBACK_USER.format(prompt) + FALLBACK_ASSISTANT.format(""))["input_ids"])


def encode_example(tokenizer, example: Example, max_length: int, loss_on: str = "response") -> Encoded:
    """Token ids and labels. loss_on="response": prompt tokens get IGNORE (the model learns to answer);
    "all": every token is a label, the prompt included (the model also learns to write questions)."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on = {loss_on!r}: use one of {', '.join(LOSS_ON)}.")
    ids, labels = [], []
    eos = tokenizer.eos_token or ""
    if not example.is_chat:
        ids = list(tokenizer(example.text + eos)["input_ids"])
        labels = list(ids)
    elif has_template(tokenizer):
        # Each assistant reply is the part of the rendered chat between "everything before it plus the
        # assistant header" and "everything up to and including it".
        ids = _template_ids(tokenizer, example.messages, generation_prompt=False)
        labels = [IGNORE] * len(ids)
        for i, (role, _) in enumerate(example.messages):
            if role != "assistant":
                continue
            start = len(_template_ids(tokenizer, example.messages[:i], generation_prompt=True))
            end = len(_template_ids(tokenizer, example.messages[: i + 1], generation_prompt=False))
            labels[start:end] = ids[start:end]
    else:
        for role, content in example.messages:
            piece = FALLBACK_ASSISTANT.format(content) + eos if role == "assistant" else FALLBACK_USER.format(content)
            piece_ids = list(tokenizer(piece, add_special_tokens=False)["input_ids"])
            ids += piece_ids
            labels += piece_ids if role == "assistant" else [IGNORE] * len(piece_ids)
    if loss_on == "all":
        labels = list(ids)
    return Encoded(tuple(ids[:max_length]), tuple(labels[:max_length]), len(ids) > max_length)


def encode_all(tokenizer, examples: list[Example], max_length: int, loss_on: str = "response") -> list[Encoded]:
    encoded = [encode_example(tokenizer, ex, max_length, loss_on) for ex in examples]
    useful = [e for e in encoded if e.trained_tokens > 0]
    if not useful:
        raise DataError(
            f"With max length {max_length} no example keeps any response token to learn from: raise the max length.",
            "too_short",
            max_length=max_length,
        )
    return useful


@dataclass(frozen=True)
class LengthStats:
    count: int
    min: int
    median: float
    p95: int
    max: int
    truncated: int
    mean_trained: float


def length_stats(tokenizer, examples: list[Example], max_length: int) -> LengthStats:
    encoded = [encode_example(tokenizer, ex, 10**9) for ex in examples]
    lengths = sorted(len(e.input_ids) for e in encoded)
    return LengthStats(
        len(lengths),
        lengths[0],
        statistics.median(lengths),
        lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        lengths[-1],
        sum(n > max_length for n in lengths),
        statistics.fmean(min(e.trained_tokens, max_length) for e in encoded),
    )


def token_lengths(tokenizer, examples: list[Example]) -> list[int]:
    return [len(encode_example(tokenizer, ex, 10**9).input_ids) for ex in examples]


def split(examples: list, eval_fraction: float, seed: int) -> tuple[list, list]:
    """A seeded shuffle, then the last `eval_fraction` (at least one example when asked for any) held out."""
    if not 0 <= eval_fraction < 1:
        raise DataError(f"The eval share must be in [0, 1), got {eval_fraction!r}.")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = 0 if eval_fraction == 0 else max(1, round(eval_fraction * len(examples)))
    if n_eval >= len(examples):
        raise DataError(
            f"{len(examples)} example(s) leave nothing to train on after holding out {n_eval} for "
            f"evaluation: add data or set the eval share to 0.",
            "no_train",
            n=len(examples),
            held=n_eval,
        )
    train = [examples[i] for i in order[: len(order) - n_eval]]
    held = [examples[i] for i in order[len(order) - n_eval :]]
    return train, held


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded to the longest example of the batch (not to max length: shorter steps)."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
