"""Speed runs stop once they agree (issue 33): after at least two decode runs whose median step times lie
within 3% of their median; a noisy variant gets every run it was given."""

import statistics

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from backends.quantization import measure
from backends.quantization.variants import TorchRunner


def test_runs_settle_only_when_two_medians_agree_within_the_tolerance():
    assert not measure.settled([0.050], 0.03)  # one run proves nothing
    assert measure.settled([0.050, 0.051], 0.03)  # 0.001 / 0.0505 = 2.0%
    assert not measure.settled([0.050, 0.052], 0.03)  # 0.002 / 0.051 = 3.9%
    assert measure.settled([0.050, 0.060, 0.0505], 0.25)
    assert not measure.settled([0.050, 0.050], None)  # None: every run


def test_speed_pools_the_steps_of_the_runs_it_made():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    runner = TorchRunner(LlamaForCausalLM(config).eval())
    prompt = torch.tensor([[1, 2, 3, 4]])
    every = measure.speed(runner, prompt, prompt, 6, 4, settle=None)
    assert every.decode_runs == 4 and len(every.decode_step_s) == 4 * 6
    loose = measure.speed(runner, prompt, prompt, 6, 4, settle=10.0)  # any two runs agree within 1000%
    assert loose.decode_runs == 2 and len(loose.decode_step_s) == 2 * 6
    assert loose.decode()[0] == 1 / statistics.median(loose.decode_step_s)
    # the greedy continuation is the first run's, whatever the number of runs
    assert loose.continuation_ids == every.continuation_ids
