"""The model's shape and the training run's settings: small frozen dataclasses with defaults (nanoGPT's GPTConfig).

The defaults are nanoGPT's CPU "baby" preset for shakespeare_char: 4 layers, 4 heads, 128 wide,
a context of 64 characters, batches of 12, 2,000 steps, learning rate 1e-3 decaying to 1e-4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

POSITIONS = ("learned", "sinusoidal", "rope")


def _from_dict(cls, data: dict):
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}.")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} setting(s): {', '.join(unknown)}.")
    values = {}
    for name, value in data.items():
        want = type(getattr(cls(), name))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f"{cls.__name__}.{name} must be {want.__name__}, got {value!r}.")
        values[name] = value
    return cls(**values)


def _check_ints(obj, names: tuple[str, ...], minimum: int) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{type(obj).__name__}.{name} must be an integer >= {minimum}, got {value!r}.")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64  # context length, in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    positions: str = "learned"  # learned | sinusoidal | rope
    rope_theta: float = 10000.0

    def __post_init__(self):
        _check_ints(self, ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"), 1)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}).")
        if self.positions not in POSITIONS:
            raise ValueError(f"Unknown positions {self.positions!r}; expected one of {', '.join(POSITIONS)}.")
        if self.positions == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"RoPE needs an even head size, got {self.n_embd // self.n_head}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GPTConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainSettings:
    max_iters: int = 2000
    batch_size: int = 12
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    sample_interval: int = 500
    sample_chars: int = 200
    temperature: float = 0.8
    seed: int = 1337

    def __post_init__(self):
        _check_ints(self, ("max_iters", "batch_size", "eval_iters"), 1)
        _check_ints(
            self, ("warmup_iters", "lr_decay_iters", "eval_interval", "sample_interval", "sample_chars", "seed"), 0
        )
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}.")
        if not 0 <= self.min_lr <= self.learning_rate:
            raise ValueError(f"min_lr must be between 0 and learning_rate, got {self.min_lr!r}.")
        if not 0 < self.temperature <= 5:
            raise ValueError(f"temperature must be in (0, 5], got {self.temperature!r}.")
        if self.batch_size > 512:
            raise ValueError(f"batch_size {self.batch_size} is too large for this CPU app (at most 512).")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        return _from_dict(cls, data)


# nanoGPT's config/train_shakespeare_char.py with its CPU "baby" overrides (README: "I only get ~1.88").
BABY = (GPTConfig(), TrainSettings())
