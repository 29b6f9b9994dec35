"""The Alignment page's DPO job: prepare and train with the fast trainer, then measure the result.

`live_dpo_job` runs off the UI thread (backends/core/jobs.py): the fast DPO trainer
(backends/alignment/fast.py) reports "setup" and "step" events; afterwards the trained copy (and the
session's SFT copy, when there is one) answers held-out prompts greedily, judged by the shipped
set's rule (backends/alignment/rule.py). The base model's answers are shared by every session
(backends/alignment/sft.py `judge_base`).
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.alignment import fast
from backends.alignment import sft as S
from backends.alignment import train as dpo_train

ANSWER_TOKENS = S.ANSWER_TOKENS


@dataclass
class LiveResult:
    train: dpo_train.DpoResult
    judged: S.Judged
    sft_judged: S.Judged | None
    cache_bytes: int


def live_dpo_job(ctx, base_model, tokenizer, base_name: str, pairs, settings, prompts, sft_model=None) -> LiveResult:
    def setup(fraction: float, message: str) -> None:
        ctx.check_stop()  # a stop while preparing ends the job with no result
        ctx.report(fraction, message, kind="setup")

    prepared = fast.prepare(base_model, tokenizer, list(pairs), settings, report=setup)
    result = dpo_train.dpo_job(ctx, prepared, settings)
    ctx.report(1.0, "answering the held-out prompts", kind="judging")
    judged = S.judge(result.model, tokenizer, list(prompts), ANSWER_TOKENS)
    sft_judged = S.judge(sft_model, tokenizer, list(prompts), ANSWER_TOKENS) if sft_model is not None else None
    S.judge_base(base_name, list(prompts), next(base_model.parameters()).device.type, ANSWER_TOKENS)
    return LiveResult(result, judged, sft_judged, prepared.cache_bytes)


def grpo_snippet(model_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct", max_words: int = 25) -> str:
    """Online RL on the same rule with TRL 1.16's GRPOTrainer: what a GPU runs in place of DPO."""
    return f'''from datasets import Dataset
from peft import LoraConfig
from trl import GRPOConfig, GRPOTrainer

prompts = Dataset.from_list([{{"prompt": [{{"role": "user", "content": q}}]}}
                             for q in open("prompts.txt", encoding="utf-8").read().splitlines()])

def brevity(completions, **kwargs):  # the reward: 1 when the answer ends within {max_words} words
    texts = [c[0]["content"] for c in completions]
    return [1.0 if len(text.split()) <= {max_words} else 0.0 for text in texts]

trainer = GRPOTrainer(
    model="{model_id}",
    reward_funcs=brevity,
    args=GRPOConfig(output_dir="grpo-brevity", num_generations=8, max_completion_length=64,
                    learning_rate=1e-5, beta=0.04, per_device_train_batch_size=8),
    train_dataset=prompts,
    peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
)
trainer.train()
'''
