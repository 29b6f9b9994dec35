"""Training the tiny VQA model in the background, and asking it questions.

`train_job(ctx, classifier, encoder, settings)` runs in the shared job runner: it computes (or
reads) the frozen features, then trains on them, one scheduler turn per step, reporting
`kind="features"` progress, `kind="step"` (loss) and `kind="epoch"` (train and test accuracy).
A stopped run returns what it has learnt so far.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from backends.core.scheduler import shared_scheduler
from backends.vision.tiny_vqa.data import (
    IMAGE_SIZE,
    EasyVqa,
    VqaFeatures,
    compute_features,
    load_easy_vqa,
)
from backends.vision.tiny_vqa.model import TinyVqa


@dataclass(frozen=True)
class VqaSettings:
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    hidden: int = 256
    train_questions: int = 0  # 0: all 38,575
    seed: int = 0
    image_size: int = IMAGE_SIZE

    def validate(self) -> VqaSettings:
        checks = [
            ("epochs", 1, 100),
            ("batch_size", 8, 4096),
            ("hidden", 8, 4096),
            ("train_questions", 0, 10**6),
            ("image_size", 32, 224),
        ]
        for name, low, high in checks:
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} = {value!r} is outside {low}..{high}.")
        if not 1e-6 <= self.lr <= 1.0:
            raise ValueError(f"learning rate {self.lr!r} is outside 1e-6..1.")
        return self


@dataclass
class TrainedVqa:
    model: TinyVqa
    answers: list[str]
    settings: VqaSettings
    history: list[dict] = field(default_factory=list)
    test_accuracy: float = 0.0
    stopped: bool = False
    seconds: float = 0.0
    features: VqaFeatures | None = None  # the frozen features it was trained on (to ask about test images)


def _tensors(features: VqaFeatures, split, images: np.ndarray, limit: int = 0):
    count = len(split.questions) if not limit else min(limit, len(split.questions))
    rows = features.question_rows(split.questions[:count])
    return (
        torch.from_numpy(images[split.image_ids[:count]]),
        torch.from_numpy(features.question_vectors[rows]),
        torch.from_numpy(split.answers[:count]).long(),
    )


def evaluate(model: TinyVqa, image: torch.Tensor, question: torch.Tensor, answers: torch.Tensor) -> float:
    model.eval()
    with shared_scheduler().turn("vision.vqa_eval"), torch.inference_mode():
        hits = sum(
            int((model(image[s : s + 4096], question[s : s + 4096]).argmax(-1) == answers[s : s + 4096]).sum())
            for s in range(0, len(answers), 4096)
        )
    return hits / max(1, len(answers))


@torch.inference_mode(False)  # the calling thread may be in inference mode: train with autograd anyway
@torch.enable_grad()
def train_vqa(
    features: VqaFeatures, data: EasyVqa, settings: VqaSettings, report=None, should_stop=None
) -> TrainedVqa:
    settings.validate()
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    xi, xq, y = _tensors(features, data.train, features.train_images, settings.train_questions)
    ti, tq, ty = _tensors(features, data.test, features.test_images)
    model = TinyVqa(xi.shape[1], xq.shape[1], len(data.answers), settings.hidden)
    model.mean.copy_(xi.mean(0))
    model.std.copy_(xi.std(0) + 1e-5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    steps_per_epoch = (len(y) + settings.batch_size - 1) // settings.batch_size
    total = settings.epochs * steps_per_epoch
    trained = TrainedVqa(model, list(data.answers), settings, features=features)
    step = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), settings.batch_size):
            if should_stop is not None and should_stop():
                trained.stopped = True
                break
            batch = order[start : start + settings.batch_size]
            with shared_scheduler().turn("vision.vqa_train"):
                loss = torch.nn.functional.cross_entropy(model(xi[batch], xq[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            step += 1
            if report is not None and (step % 5 == 0 or step == total):
                report(step / total, "step", step=step, epoch=epoch, loss=loss.item())
        if trained.stopped:
            break
        row = {
            "epoch": epoch,
            "step": step,
            "loss": loss.item(),
            "train_acc": evaluate(model, xi, xq, y),
            "test_acc": evaluate(model, ti, tq, ty),
        }
        trained.history.append(row)
        if report is not None:
            report(step / total, "epoch", **row)
    model.eval()
    trained.test_accuracy = evaluate(model, ti, tq, ty)
    trained.seconds = time.perf_counter() - started
    return trained


def train_job(ctx, classifier, encoder, settings: VqaSettings) -> TrainedVqa:
    """Background job: features (cached), then training. `classifier`/`encoder` are cached LoadedModels."""
    threads = torch.get_num_threads()
    from backends.core.jobs import job_threads

    torch.set_num_threads(job_threads())
    try:
        data = load_easy_vqa()

        def on_features(stage, done, total):
            ctx.report(0.0, "features", kind="features", stage=stage, done=done, total=total)

        ctx.report(0.0, "features", kind="features", stage="start", done=0, total=1)
        features = compute_features(
            classifier.model,
            encoder.model,
            data,
            settings.image_size,
            progress=on_features,
            should_stop=lambda: ctx.stopped,
        )

        def on_step(progress, message, **row):
            ctx.report(progress, message, kind=message, **row)

        ctx.report(0.0, "start", kind="start", settings=asdict(settings), cached=features.from_cache)
        trained = train_vqa(features, data, settings, on_step, lambda: ctx.stopped)
        ctx.report(1.0, "end", kind="end", test_acc=trained.test_accuracy, seconds=trained.seconds)
        return trained
    finally:
        torch.set_num_threads(threads)


def ask(trained: TrainedVqa, image_vector: np.ndarray, question_vector: np.ndarray, k: int = 3):
    """The k most likely answers as (answer, probability)."""
    model = copy.deepcopy(trained.model).eval() if trained.model.training else trained.model
    with shared_scheduler().turn("vision.vqa_ask"), torch.inference_mode():
        logits = model(torch.as_tensor(image_vector)[None].float(), torch.as_tensor(question_vector)[None].float())
    probs = logits.softmax(-1)[0]
    top = probs.topk(min(k, len(trained.answers)))
    return [(trained.answers[int(i)], float(p)) for p, i in zip(top.values, top.indices)]
