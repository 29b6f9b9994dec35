"""The compute scheduler: first come first served, the bound held, cancel, slots given back."""

import itertools
import threading
import time

import pytest

from backends.core.scheduler import Cancelled, ComputeScheduler, QueueFull, waiting_context


def _wait_until(condition, timeout=5.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_steps_start_in_arrival_order_and_the_bound_holds():
    sched = ComputeScheduler(slots=2)
    started, running, peak = [], [0], [0]
    lock, gate = threading.Lock(), threading.Event()

    def step(name):
        with sched.turn("t", owner=name) as ticket:
            with lock:
                started.append((ticket.started, name))
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            gate.wait(5)
            time.sleep(0.01)
            with lock:
                running[0] -= 1

    threads = []
    for i in range(6):  # queue them one by one so arrival order is known
        thread = threading.Thread(target=step, args=(f"s{i}",))
        thread.start()
        threads.append(thread)
        _wait_until(lambda queued=i + 1: sched.state().running + sched.state().waiting == queued)
    assert sched.state().running == 2 and sched.state().waiting == 4
    assert sched.position_of("s2") == 0 and sched.position_of("s5") == 3
    gate.set()
    for thread in threads:
        thread.join()
    assert [name for _, name in sorted(started)] == [f"s{i}" for i in range(6)]
    assert peak[0] == 2 and sched.state().running == 0 and sched.served == 6


def test_two_sessions_decoding_at_once_take_turns_token_by_token():
    sched = ComputeScheduler(slots=1)
    order, lock = [], threading.Lock()

    def session(name):
        for _ in range(5):
            with sched.turn("decode", owner=name):
                with lock:
                    order.append(name)
                time.sleep(0.005)

    threads = [threading.Thread(target=session, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert sorted(order) == ["a"] * 5 + ["b"] * 5
    assert switches >= 7, f"one session held the slot for several steps: {order}"


def test_a_waiting_step_can_be_cancelled_and_its_place_is_freed():
    sched = ComputeScheduler(slots=1)
    hold, stop, seen = threading.Event(), threading.Event(), []

    def holder():
        with sched.turn("long", owner="teacher"):
            hold.wait(5)

    def waiter():
        with (
            waiting_context(owner="student", on_wait=lambda pos, eta: seen.append(pos), should_stop=stop.is_set),
            pytest.raises(Cancelled),
            sched.turn("decode"),
        ):
            pass

    first = threading.Thread(target=holder)
    first.start()
    _wait_until(lambda: sched.state().running == 1)
    second = threading.Thread(target=waiter)
    second.start()
    _wait_until(lambda: seen)
    assert seen[0] == 0, "the student is next in line"
    stop.set()
    second.join(5)
    assert not second.is_alive()
    assert sched.state().waiting == 0, "the cancelled step left the queue"
    hold.set()
    first.join()
    with sched.turn("after"):  # the slot came back
        assert sched.state().running == 1


def test_an_exception_inside_a_step_gives_the_slot_back():
    sched = ComputeScheduler(slots=1)
    with pytest.raises(RuntimeError), sched.turn("x"):
        raise RuntimeError("boom")
    assert sched.state().running == 0
    with sched.turn("y"):
        pass


def test_nested_turns_are_free_and_a_full_queue_refuses_at_once():
    sched = ComputeScheduler(slots=1, max_waiting=1)
    with sched.turn("outer"), sched.turn("inner"):  # same thread: no second slot, no deadlock
        assert sched.state().running == 1
    hold = threading.Event()

    def busy(label):
        with sched.turn(label):
            hold.wait(5)

    threads = [threading.Thread(target=busy, args=(label,)) for label in ("a", "b")]
    threads[0].start()
    _wait_until(lambda: sched.state().running == 1)
    threads[1].start()
    _wait_until(lambda: sched.state().waiting == 1)
    with pytest.raises(QueueFull), sched.turn("c"):
        pass
    hold.set()
    for thread in threads:
        thread.join()
    assert sched.served == 3, "outer, a and b ran; c was refused"


def test_turn_per_forward_takes_one_turn_per_forward_pass():
    import torch

    sched = ComputeScheduler(slots=1)
    layer = torch.nn.Linear(2, 2)
    with sched.turn_per_forward(layer, "gen"):
        for _ in range(3):
            layer(torch.ones(1, 2))
    assert sched.served == 3 and sched.state().running == 0
    layer(torch.ones(1, 2))
    assert sched.served == 3, "the hooks are gone after the block"


def test_training_steps_leave_a_slot_for_interactive_work():
    """With two slots, two sessions' training steps never run at once (their activations would add
    up), and a token that arrives behind a waiting training step takes the free slot at once."""
    sched = ComputeScheduler(slots=2)
    assert sched.training_slots == 1
    gate, events, lock = threading.Event(), [], threading.Lock()

    def step(label, name):
        with sched.turn(label, owner=name):
            with lock:
                events.append(("start", name))
            gate.wait(5)

    first = threading.Thread(target=step, args=("lora", "train-a"))
    first.start()
    _wait_until(lambda: sched.state().running == 1)
    second = threading.Thread(target=step, args=("lora", "train-b"))
    second.start()
    _wait_until(lambda: sched.state().waiting == 1)
    time.sleep(0.3)
    assert sched.state().running == 1, "a second training step must not take the last slot"
    token = threading.Thread(target=step, args=("decode", "student"))
    token.start()
    _wait_until(lambda: ("start", "student") in events)
    assert sched.state().running == 2 and sched.position_of("train-b") == 0
    gate.set()
    for thread in (first, second, token):
        thread.join()
    assert [name for kind, name in events] == ["train-a", "student", "train-b"]


def test_an_exclusive_step_runs_alone_and_keeps_its_place_in_line():
    """A benchmark's timed step (every core) waits for the running step, then runs with nothing beside
    it; a token that asked after it waits for it, one that asked before it does not."""
    sched = ComputeScheduler(slots=2)
    gates = {name: threading.Event() for name in ("a", "bench", "b")}
    events, lock = [], threading.Lock()

    def step(name, exclusive=False):
        with sched.turn("quantization" if exclusive else "decode", owner=name, exclusive=exclusive):
            with lock:
                events.append(("start", name))
            gates[name].wait(5)
        with lock:
            events.append(("end", name))

    a = threading.Thread(target=step, args=("a",))
    a.start()
    _wait_until(lambda: sched.state().running == 1)
    bench = threading.Thread(target=step, args=("bench", True))
    bench.start()
    _wait_until(lambda: sched.state().waiting == 1)
    b = threading.Thread(target=step, args=("b",))
    b.start()
    _wait_until(lambda: sched.state().waiting == 2)
    time.sleep(0.3)
    assert sched.state().running == 1, "a free slot is not taken past a waiting exclusive step"
    gates["a"].set()
    _wait_until(lambda: ("start", "bench") in events)
    time.sleep(0.3)
    assert ("start", "b") not in events and sched.state().running == 1, "nothing runs beside an exclusive step"
    gates["bench"].set()
    gates["b"].set()
    for thread in (a, bench, b):
        thread.join()
    assert [name for kind, name in events if kind == "start"] == ["a", "bench", "b"]
    assert events.index(("end", "bench")) < events.index(("start", "b"))
