"""One process-wide scheduler for model compute, shared by every session and the REST server.

Work is scheduled one *step* at a time (one token, one training step, one batch of
embeddings, one forward pass), so a long job never holds the cores while another
session's first token waits:

    with shared_scheduler().turn("decode"):
        logits = model(...)

- At most `slots` steps run at once (default: the number of cores; LLMPG_COMPUTE_SLOTS).
- First come, first served: a step waits behind every step that asked before it, so
  sessions that decode at the same time take turns token by token.
- A thread that already holds a turn does not queue again (nested calls are free).
- Who is asking, and what to do while waiting, is set around the work by the caller
  (`with waiting_context(owner=..., on_wait=..., should_stop=...)`): `on_wait(position,
  eta_s)` is called about five times a second while the step waits (a page shows the
  place in the queue; a Streamlit rerun or Stop raised inside it unwinds the wait) and
  once with position -1 when a step that waited starts, and
  `should_stop()` returning true cancels the wait with `Cancelled`.
- `max_waiting` bounds the queue: past it `turn` raises `QueueFull` at once (the REST
  server answers 429).
- Training steps (`TRAINING_LABELS`) hold at most `training_slots` slots (default: all but one),
  so at least one slot is always left for interactive work (a token, an attention run, a search),
  and two students' backward passes, ~0.5 GB of activations each for SmolLM2, never run at once
  on a two-core server. A training step that may not start yet lets the steps behind it go first;
  everything else keeps its arrival order.
- An exclusive step (`turn(label, exclusive=True)`: a benchmark's timed forward pass, which uses
  every core) starts only when nothing else runs, and nothing starts beside it. It keeps its
  place in line: the steps behind it wait until it has run, so it gets the cores within one step.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from backends.core.memory import TRIM_AFTER_S, release_free_memory
from backends.core.shared import process_wide

SLOTS_ENV = "LLMPG_COMPUTE_SLOTS"
# Labels of training steps (forward + backward + optimizer): see training_slots.
TRAINING_LABELS = frozenset({"lora", "classifier", "scratch_gpt", "vision.vqa_train", "dpo"})
TRACE_ENV = "LLMPG_SCHEDULER_TRACE"  # a file: one line per step (label, owner, waited, ran), for bench/classroom.py
POLL_S = 0.2


class QueueFull(RuntimeError):
    """More steps are waiting than the scheduler admits."""


class Cancelled(RuntimeError):
    """The caller stopped waiting for its turn."""


def default_slots() -> int:
    explicit = os.environ.get(SLOTS_ENV)
    if explicit:
        return max(1, int(explicit))
    return max(1, os.cpu_count() or 1)


@dataclass
class Ticket:
    id: int
    owner: str
    label: str
    asked: float = field(default_factory=time.perf_counter)
    started: float | None = None
    exclusive: bool = False  # runs alone, on every core


@dataclass(frozen=True)
class QueueState:
    slots: int
    running: int
    waiting: int
    owners_waiting: tuple[str, ...]


class _Local(threading.local):
    def __init__(self):
        self.held = 0  # turns this thread holds (nested turns are free)
        self.owner: str | None = None
        self.on_wait: Callable[[int, float], None] | None = None
        self.should_stop: Callable[[], bool] | None = None
        self.trim_at_end = False  # a background job's thread: its long steps leave the heap to its end


_local = _Local()


@contextmanager
def waiting_context(
    owner: str | None = None,
    on_wait: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    trim_at_end: bool | None = None,
) -> Iterator[None]:
    """Who this thread's steps belong to, and what it does while a step waits (see the module doc).

    `trim_at_end=True` (a background job's thread, backends/core/jobs.py): its long steps do not hand
    free heap pages back after each step (the next step would fault the same pages in again: 6% of a
    LoRA step); the job hands them back once, when it ends."""
    saved = (_local.owner, _local.on_wait, _local.should_stop, _local.trim_at_end)
    _local.owner = owner if owner is not None else _local.owner
    _local.on_wait = on_wait if on_wait is not None else _local.on_wait
    _local.should_stop = should_stop if should_stop is not None else _local.should_stop
    _local.trim_at_end = trim_at_end if trim_at_end is not None else _local.trim_at_end
    try:
        yield
    finally:
        _local.owner, _local.on_wait, _local.should_stop, _local.trim_at_end = saved


class ComputeScheduler:
    def __init__(self, slots: int | None = None, max_waiting: int = 512, training_slots: int | None = None):
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}.")
        self.slots = slots or default_slots()
        self.training_slots = max(1, training_slots if training_slots is not None else self.slots - 1)
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._running: dict[int, Ticket] = {}
        self._ids = itertools.count(1)
        self._step_s: dict[str, float] = {}  # moving average of a step's duration, per label
        self.served = 0
        trace = os.environ.get(TRACE_ENV)
        self._trace = open(trace, "a", encoding="utf-8", buffering=1) if trace else None

    @contextmanager
    def turn(
        self, label: str = "compute", owner: str | None = None, exclusive: bool = False
    ) -> Iterator[Ticket | None]:
        """Wait for a free slot in arrival order, hold it for the body, then give it back.

        exclusive=True: wait until nothing else runs and hold every slot (see the module doc)."""
        if _local.held:
            _local.held += 1
            try:
                yield None
            finally:
                _local.held -= 1
            return
        ticket = self._enqueue(label, owner or _local.owner or threading.current_thread().name, exclusive)
        try:
            self._wait_for(ticket)
            _local.held = 1
            yield ticket
        finally:
            _local.held = 0
            self._release(ticket)

    @contextmanager
    def turn_per_forward(self, module, label: str = "compute") -> Iterator[None]:
        """Every forward pass of `module` inside the block takes its own turn: for a library's own
        loop (transformers' `generate`) that we cannot break into steps ourselves.

        Hooks go on `module` for the block only: use it on a session's private copy, never on a
        model the cache shares (hooks would be seen by every session).
        """
        held = []

        def before(mod, args):
            step = self.turn(label)
            step.__enter__()
            held.append(step)

        def after(mod, args, output):
            if held:
                held.pop().__exit__(None, None, None)

        hooks = [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()
            while held:
                held.pop().__exit__(None, None, None)

    def _enqueue(self, label: str, owner: str, exclusive: bool = False) -> Ticket:
        with self._cond:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self._waiting)} steps are already waiting (limit {self.max_waiting}).")
            ticket = Ticket(next(self._ids), owner, label, exclusive=exclusive)
            self._waiting.append(ticket)
            return ticket

    def _may_start(self, ticket: Ticket) -> bool:
        """In arrival order: the first step in line that may run takes a free slot (a training step
        waits while the training slots are taken, and lets the steps behind it pass; an exclusive
        step waits until nothing runs, and everything behind it waits with it)."""
        if len(self._running) >= self.slots or any(t.exclusive for t in self._running.values()):
            return False
        training = sum(1 for t in self._running.values() if t.label in TRAINING_LABELS)
        for waiting in self._waiting:
            if waiting.label in TRAINING_LABELS and training >= self.training_slots:
                continue
            if waiting.exclusive and self._running:
                return False
            return waiting is ticket
        return False

    def _wait_for(self, ticket: Ticket) -> None:
        on_wait, should_stop = _local.on_wait, _local.should_stop
        waited = False
        while True:
            with self._cond:
                if self._may_start(ticket):
                    self._waiting.remove(ticket)
                    ticket.started = time.perf_counter()
                    self._running[ticket.id] = ticket
                    if self._waiting and len(self._running) < self.slots:
                        self._cond.notify_all()  # the next in line may take another free slot now
                    break
                self._cond.wait(POLL_S)
                if self._may_start(ticket):
                    continue
                position = self._position(ticket)
                eta = self._eta(position)
            if should_stop is not None and should_stop():
                raise Cancelled("stopped while waiting for a free compute slot")
            if on_wait is not None:
                waited = True
                on_wait(position, eta)
        if waited and on_wait is not None:
            on_wait(-1, 0.0)  # the step starts: a page clears its "waiting" note

    def _position(self, ticket: Ticket) -> int:
        """Steps ahead of this one (0: next to start)."""
        for i, t in enumerate(self._waiting):
            if t is ticket:
                return i
        return 0

    def _eta(self, position: int) -> float:
        step = sum(self._step_s.values()) / len(self._step_s) if self._step_s else 0.05
        return (position // self.slots + 1) * step

    def _release(self, ticket: Ticket) -> None:
        long_step = ticket.started is not None and time.perf_counter() - ticket.started >= TRIM_AFTER_S
        if long_step and not _local.trim_at_end:
            release_free_memory()  # a long step (an attention run, a batch) freed its activations: return them
        with self._cond:
            if self._running.pop(ticket.id, None) is not None and ticket.started is not None:
                took = time.perf_counter() - ticket.started
                old = self._step_s.get(ticket.label)
                self._step_s[ticket.label] = took if old is None else 0.8 * old + 0.2 * took
                self.served += 1
                if self._trace is not None:
                    self._trace.write(
                        f"{ticket.started:.3f}\t{ticket.label}\t{ticket.owner}\t"
                        f"{ticket.started - ticket.asked:.3f}\t{took:.3f}\n"
                    )
            else:
                with suppress(ValueError):
                    self._waiting.remove(ticket)
            self._cond.notify_all()

    def state(self) -> QueueState:
        with self._cond:
            return QueueState(
                self.slots,
                len(self._running),
                len(self._waiting),
                tuple(dict.fromkeys(t.owner for t in self._waiting)),
            )

    def position_of(self, owner: str) -> int | None:
        """Place of an owner's first waiting step (0: next), or None when it waits for nothing."""
        with self._cond:
            for i, t in enumerate(self._waiting):
                if t.owner == owner:
                    return i
        return None


shared_scheduler = process_wide(ComputeScheduler)
