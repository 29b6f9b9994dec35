"""Long work (training, indexing, benchmarks) off the UI thread.

A job function takes a JobContext as its first argument, calls ctx.report()
with progress and data as it goes, and checks ctx.stopped (or calls
ctx.check_stop()) often enough that the stop button is felt. The page keeps
the job id in its session state and polls job.events_since(n).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from backends.core.memory import release_free_memory
from backends.core.scheduler import Cancelled, waiting_context
from backends.core.shared import process_wide

PENDING, RUNNING, DONE, FAILED, STOPPED = "pending", "running", "done", "failed", "stopped"
THREADS_ENV = "LLMPG_JOB_THREADS"
# Finished jobs are forgotten after this long, or when more than MAX_FINISHED have piled up, so a
# result nobody picked up (a LoRA model copy of a closed tab) does not stay in memory for ever.
RETAIN_S = 30 * 60
MAX_FINISHED = 64


_submitting = threading.local()


@contextmanager
def owned_by(owner: object):
    """Jobs submitted inside the block belong to `owner` (a browser session's token object): once
    the owner is gone (Streamlit drops a closed tab's session state after
    `server.disconnectedSessionTTL`), its running jobs stop at their next stop check and their
    results are forgotten at once, so a class that leaves keeps no training runs going."""
    saved = getattr(_submitting, "owner", None)
    _submitting.owner = weakref.ref(owner)
    try:
        yield
    finally:
        _submitting.owner = saved


def job_threads() -> int:
    """torch threads for one background job: all cores but one, so the UI and other sessions stay quick.

    On a shared 2-core machine, two OpenMP threads per training step stalled each other (0.6 s to
    20 s for the same batch) while one thread was a steady 1 s. torch's thread count belongs to the
    calling thread, so this setting touches the job's own thread only.
    """
    explicit = os.environ.get(THREADS_ENV)
    if explicit:
        return max(1, int(explicit))
    return max(1, (os.cpu_count() or 2) - 1)


class JobStopped(Exception):
    """Raised by ctx.check_stop() to unwind a job that was asked to stop."""


@dataclass(frozen=True)
class JobEvent:
    t: float
    progress: float | None
    message: str
    data: dict = field(default_factory=dict)


class JobContext:
    def __init__(self, job: Job):
        self._job = job

    @property
    def stopped(self) -> bool:
        job = self._job
        if job._owner is not None and job._owner() is None and not job._stop.is_set():
            job.orphaned = True  # the session that started it is gone
            job._stop.set()
        return job._stop.is_set()

    def check_stop(self) -> None:
        if self.stopped:
            raise JobStopped()

    def report(self, progress: float | None = None, message: str = "", **data: Any) -> None:
        self._job._append(JobEvent(time.time(), progress, message, data))


class Job:
    def __init__(self, job_id: str, name: str):
        self.id = job_id
        self.name = name
        self.status = PENDING
        self.result: Any = None
        self.error: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.queued: tuple[int, float] | None = None  # (steps ahead, seconds) while waiting for compute
        self._events: list[JobEvent] = []
        self._owner: weakref.ref | None = getattr(_submitting, "owner", None)  # see owned_by
        self.orphaned = False  # stopped because its session is gone
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()

    def _append(self, event: JobEvent) -> None:
        with self._lock:
            self._events.append(event)

    def events_since(self, index: int = 0) -> list[JobEvent]:
        with self._lock:
            return self._events[index:]

    @property
    def progress(self) -> float | None:
        with self._lock:
            for event in reversed(self._events):
                if event.progress is not None:
                    return event.progress
        return None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _queued(self, position: int, eta_s: float) -> None:
        """Called by the compute scheduler while a step of this job waits; -1 when it starts."""
        self.queued = None if position < 0 else (position, eta_s)

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.started = time.time()
        self.status = RUNNING
        try:
            import torch

            torch.set_num_threads(job_threads())
            ctx = JobContext(self)
            # The job's model steps wait in the shared compute queue like everyone's; Stop cancels a wait.
            with waiting_context(
                owner=self.id, should_stop=lambda: ctx.stopped, on_wait=self._queued, trim_at_end=True
            ):
                self.result = fn(ctx, *args, **kwargs)
            self.status = STOPPED if self._stop.is_set() else DONE
        except (JobStopped, Cancelled):
            self.status = STOPPED
        except Exception as exc:  # a job's failure is shown in its page, never raised into the UI thread
            self.error = f"{type(exc).__name__}: {exc}"
            self._traceback = traceback.format_exc()
            self.status = FAILED
        finally:
            if self.orphaned:
                self.result = None  # nobody can pick it up: free the model copy now
            release_free_memory()  # the steps' freed activations go back to the system once, now
            self.finished = time.time()
            self._done.set()


class JobRunner:
    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def submit(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        with self._lock:
            self._forget_old()
            job = Job(f"{name}-{next(self._ids)}", name)
            self._jobs[job.id] = job
        thread = threading.Thread(target=job._run, args=(fn, args, kwargs), name=f"job:{job.id}", daemon=True)
        thread.start()
        return job

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.done), key=lambda j: j.finished)
        cutoff = time.time() - RETAIN_S
        for i, job in enumerate(finished):
            if job.finished < cutoff or i < len(finished) - MAX_FINISHED or job.orphaned:
                del self._jobs[job.id]

    def get(self, job_id: str | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id) if job_id else None


shared_runner = process_wide(JobRunner)
