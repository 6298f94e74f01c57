"""didtv.pipeline.stages: overlapped decode / model / encode with bounded queues."""

from __future__ import annotations

import threading
import time

import pytest

from didtv.pipeline.stages import StageClock, run_stages


def double(items):
    for x in items:
        yield 2 * x


def test_outputs_in_order_and_every_stage_counted():
    written = []
    stats = run_stages(range(20), double, written.append, depth=3)
    assert written == [2 * i for i in range(20)]
    assert {n: c.frames for n, c in stats.clocks.items()} == {"decode": 20, "model": 20, "encode": 20}


def test_empty_input():
    written = []
    stats = run_stages([], double, written.append)
    assert written == [] and stats.bottleneck is None


def test_memory_is_bounded_by_the_queues():
    """The decoder never runs more than the queue depth ahead of the model."""
    produced, ahead = [0], []
    consumed = [0]

    def source():
        for i in range(40):
            produced[0] += 1
            ahead.append(produced[0] - consumed[0])
            yield i

    def slow_model(items):
        for x in items:
            consumed[0] += 1
            time.sleep(0.002)
            yield x

    run_stages(source(), slow_model, lambda _: None, depth=2)
    # in the queue (2) + one in the decoder's hand + one being handed over
    assert max(ahead) <= 2 + 2


@pytest.mark.parametrize("where", ["decode", "model", "encode"])
def test_an_error_in_any_stage_reaches_the_caller(where):
    def source():
        for i in range(100):
            if where == "decode" and i == 5:
                raise ValueError("decode broke")
            yield i

    def model(items):
        for x in items:
            if where == "model" and x == 5:
                raise ValueError("model broke")
            yield x

    written = []

    def write(x):
        if where == "encode" and x == 5:
            raise ValueError("encode broke")
        written.append(x)

    with pytest.raises(ValueError, match=f"{where} broke"):
        run_stages(source(), model, write, depth=2)
    assert len(written) <= 5
    # No stage thread is left running.
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name.startswith("didtv-")]


def test_keyboard_interrupt_in_the_model_stops_everything():
    def model(items):
        for x in items:
            if x == 3:
                raise KeyboardInterrupt
            yield x

    with pytest.raises(KeyboardInterrupt):
        run_stages(range(1000), model, lambda _: None)


def test_abort_releases_a_blocked_stage_before_the_threads_are_joined():
    """The encode thread is stuck (as in a write to a pipe nobody reads) when the model fails:
    ``abort`` (which kills the process in the real pipeline) is what lets it end, so it must run
    before the join, once; and not at all when everything went well."""
    released = threading.Event()
    calls = []

    def stuck_write(_):
        released.wait(30)

    def model(items):
        for x in items:
            if x == 3:
                time.sleep(0.1)  # the encode thread is inside its write by now
                raise ValueError("model failed")
            yield x

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="model failed"):
        run_stages(range(100), model, stuck_write, depth=2,
                   abort=lambda: (calls.append(1), released.set()))
    assert calls == [1]
    assert time.monotonic() - t0 < 1.5  # not the 2 s join timeout
    assert not [t for t in threading.enumerate() if t.name.startswith("didtv-")]
    run_stages(range(5), double, lambda _: None, abort=lambda: calls.append(2))
    assert calls == [1]


def test_the_slow_stage_is_named_the_bottleneck():
    def slow_write(_):
        time.sleep(0.01)

    stats = run_stages(range(15), double, slow_write, depth=2)
    assert stats.bottleneck == "encode"
    assert "bottleneck: encode" in stats.describe()
    assert stats.as_dict()["stages"]["encode"]["frames"] == 15


def test_progress_snapshots_are_copies():
    seen = []
    run_stages(range(10), double, lambda _: None, on_frame=seen.append)
    assert [s.clocks["model"].frames for s in seen] == list(range(1, 11)) + [10]  # every frame, then the end
    assert seen[-1].clocks["encode"].frames == 10
    assert len({id(s) for s in seen}) == len(seen)


def test_clock_fps():
    assert StageClock("x").fps == 0.0
    assert StageClock("x", frames=10, busy=2.0).fps == 5.0
