"""Guided experiments that check themselves: for each page, a few stated observations a learner
predicts, each measured on the real offline models through the topic packages' public APIs.

  base.py        `Experiment` (choices, the expected choice, parameters, the measurement) and
                 `Observation` (the numbers, the choice they support, `holds`)
  tokenizers.py  token counts of one text in two tokenizers; a space changes the token
  attention.py   a previous-token head, the attention sink, encoder vs decoder masks
  decoding.py    temperature, top-k = 1 against greedy, the repetition penalty
  lora.py        what trains (rank, target layers, share), and a fresh adapter changes nothing
  rag.py         with and without retrieval, an off-topic question
  scratch_gpt.py an untrained model's loss, width and parameters, the alphabet of a corpus
  quantization.py GGUF Q5_1 vs Q5_0 on real-valued weights and on the shipped 4-bit grid; a Q4_0 file's bits

The outcome is always read off the measured numbers, never written down: tests/backends/
test_experiments.py runs every experiment and asserts its stated observation holds, so the
panel cannot teach what the app does not show.

Notes (how it works, what is left out, measured figures): docs/experiments.md.
"""

from backends.experiments import attention, decoding, lora, quantization, rag, scratch_gpt, tokenizers
from backends.experiments.base import DEFAULT_DEVICE, Experiment, Observation

EXPERIMENTS: dict[str, tuple[Experiment, ...]] = {
    module.__name__.rsplit(".", 1)[-1]: module.EXPERIMENTS
    for module in (scratch_gpt, tokenizers, attention, decoding, lora, rag, quantization)
}


def find(page: str, experiment_id: str) -> Experiment:
    """One experiment by page and id; a clear error naming what exists otherwise."""
    for exp in EXPERIMENTS.get(page, ()):
        if exp.id == experiment_id:
            return exp
    known = ", ".join(e.key for exps in EXPERIMENTS.values() for e in exps)
    raise KeyError(f"No experiment {page}.{experiment_id!r}; known: {known}.")


__all__ = ["DEFAULT_DEVICE", "EXPERIMENTS", "Experiment", "Observation", "find"]
