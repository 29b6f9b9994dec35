import time

from backends.core.jobs import DONE, FAILED, STOPPED, JobRunner


def test_a_job_reports_progress_and_returns_its_result():
    def count(ctx, n):
        total = 0
        for i in range(n):
            total += i
            ctx.report((i + 1) / n, "step", i=i)
        return total

    job = JobRunner().submit("count", count, 5)
    assert job.wait(5)
    assert job.status == DONE and job.result == 10
    events = job.events_since(0)
    assert [e.data["i"] for e in events] == [0, 1, 2, 3, 4]
    assert job.progress == 1.0
    assert [e.data["i"] for e in job.events_since(3)] == [3, 4]


def test_stop_ends_a_running_job():
    def forever(ctx):
        steps = 0
        while not ctx.stopped:
            steps += 1
            ctx.report(None, "tick")
            time.sleep(0.01)
        return steps

    job = JobRunner().submit("forever", forever)
    time.sleep(0.1)
    assert not job.done
    job.stop()
    assert job.wait(2)
    assert job.status == STOPPED and job.result > 0


def test_check_stop_unwinds_the_job():
    def polite(ctx):
        while True:
            ctx.check_stop()
            time.sleep(0.01)

    job = JobRunner().submit("polite", polite)
    job.stop()
    assert job.wait(2) and job.status == STOPPED and job.result is None


def test_a_failing_job_keeps_its_error_and_the_runner_keeps_working():
    def boom(ctx):
        raise RuntimeError("disk full")

    runner = JobRunner()
    bad = runner.submit("boom", boom)
    assert bad.wait(2)
    assert bad.status == FAILED and bad.error == "RuntimeError: disk full"
    good = runner.submit("ok", lambda ctx: "fine")
    assert good.wait(2) and good.result == "fine"
    assert runner.get(bad.id) is bad and runner.get("nope") is None and runner.get(None) is None


def test_jobs_run_off_the_calling_thread():
    import threading

    caller = threading.get_ident()
    job = JobRunner().submit("where", lambda ctx: threading.get_ident())
    assert job.wait(2) and job.result != caller


def test_process_wide_objects_are_built_once_under_concurrent_requests():
    import threading

    from backends.core.shared import process_wide

    built = []

    def factory():
        time.sleep(0.05)  # widen the race window
        built.append(object())
        return built[-1]

    get = process_wide(factory)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and all(s is built[0] for s in seen)


def test_a_job_runs_torch_on_its_own_thread_count(monkeypatch):
    import torch

    from backends.core.jobs import THREADS_ENV

    monkeypatch.setenv(THREADS_ENV, "1")
    before = torch.get_num_threads()
    job = JobRunner().submit("threads", lambda ctx: torch.get_num_threads())
    job.wait(10)
    assert job.result == 1
    assert torch.get_num_threads() == before, "the caller's threads are untouched"


def test_finished_jobs_are_forgotten_when_too_many_or_too_old(monkeypatch):
    from backends.core import jobs

    monkeypatch.setattr(jobs, "MAX_FINISHED", 2)
    runner = JobRunner()
    done = []
    for _ in range(3):  # one after another: the oldest finished job is then done[0], whatever the load
        done.append(runner.submit("quick", lambda ctx: 1))
        done[-1].wait(10)
    slow = runner.submit("slow", lambda ctx: time.sleep(0.3))  # submitting prunes the finished ones
    assert runner.get(done[0].id) is None and runner.get(done[2].id) is done[2]
    assert runner.get(slow.id) is slow, "a running job is never forgotten"
    slow.wait(10)
    monkeypatch.setattr(jobs, "RETAIN_S", 0)
    runner.submit("later", lambda ctx: 1).wait(10)
    assert runner.get(done[2].id) is None and runner.get(slow.id) is None


def test_a_running_job_stops_once_the_session_that_started_it_is_gone():
    """Streamlit drops a closed tab's session state after its disconnected-session TTL; the token kept
    there is the job's owner, so the job stops at its next check and drops its result."""
    import gc

    from backends.core.jobs import owned_by

    class Token:
        pass

    def loop(ctx):
        while not ctx.stopped:
            time.sleep(0.01)
        return "a model copy"

    kept, dropped = Token(), Token()
    runner = JobRunner()
    with owned_by(kept):
        stays = runner.submit("stays", loop)
    with owned_by(dropped):
        goes = runner.submit("goes", loop)
    free = runner.submit("no-owner", loop)  # submitted outside any session: never orphaned
    del dropped
    gc.collect()
    assert goes.wait(10) and goes.status == STOPPED and goes.orphaned and goes.result is None
    time.sleep(0.2)
    assert not stays.done and not free.done
    stays.stop()
    free.stop()
    assert stays.wait(10) and not stays.orphaned and stays.result == "a model copy"
    assert free.wait(10) and free.result == "a model copy"
    runner.submit("next", lambda ctx: None)
    assert runner.get(goes.id) is None and runner.get(stays.id) is stays, "an orphan's job is forgotten at once"


def test_a_jobs_long_steps_hand_memory_back_once_at_its_end_and_an_interactive_one_at_once(monkeypatch):
    """glibc's malloc_trim is the outside call here (counted, not run): after each of a training job's
    steps the next step would fault the freed pages in again, so a job trims once, when it ends; a long
    step outside a job (an attention run) trims as soon as it ends."""
    from backends.core import jobs, scheduler
    from backends.core.memory import TRIM_AFTER_S

    trims = []
    monkeypatch.setattr(scheduler, "release_free_memory", lambda: trims.append("step"))
    monkeypatch.setattr(jobs, "release_free_memory", lambda: trims.append("job end"))
    sched = scheduler.ComputeScheduler(slots=2)

    def three_long_steps(ctx):
        for _ in range(3):
            with sched.turn("lora"):
                time.sleep(TRIM_AFTER_S + 0.02)
            assert trims == []  # none after a step of the job

    job = JobRunner().submit("train", three_long_steps)
    assert job.wait(10) and job.status == DONE, job.error
    assert trims == ["job end"]
    with sched.turn("attention"):
        time.sleep(TRIM_AFTER_S + 0.02)
    assert trims == ["job end", "step"]
    with sched.turn("decode"):
        pass  # a token's step: no trim
    assert trims == ["job end", "step"]
