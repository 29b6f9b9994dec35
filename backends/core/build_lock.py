"""One lock for building torch modules, because loading a model patches torch for the whole process.

While transformers 5's `from_pretrained` builds a model it swaps functions process-wide:
`torch.nn.init.*` become no-ops, `torch.linspace` is wrapped, `PreTrainedModel.init_weights`
is emptied, and the model is built under a meta-device context. A module built in another
thread at that moment (peft's LoRA layers, a classifier head, a from-scratch GPT, a second
model load) gets uninitialised or meta weights; two loads that overlap restore each other's
patches in the wrong order. Seen here: eight sessions' first uses at once gave "Cannot copy
out of meta tensor" for SmolLM2. So every model load and every construction of a module
outside a training step holds `MODEL_BUILD` (re-entrant: a load inside a build is fine).
Never ask the model cache for a model while holding it: another thread may be loading that
model, and its load waits for this lock (the cold-start test once hung exactly so).
"""

from __future__ import annotations

import threading

MODEL_BUILD = threading.RLock()
