"""Property-based tests (hypothesis) for the window / padding index functions.

didtv.pipeline.window: window_indices (the reference) and sliding_windows (the streaming
version the runner uses); didtv.pipeline.runner.stack_windows and replicate_margin (size multiples);
didtv.io.decode.even_size / retime_plan (odd sizes, variable frame rate timing).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from didtv.io.decode import even_size, retime_plan
from didtv.pipeline.runner import replicate_margin, stack_windows
from didtv.pipeline.window import PAD_MODES, sliding_windows, window_indices

sizes = st.integers(min_value=0, max_value=12).map(lambda k: 2 * k + 1)  # odd, 1..25
lengths = st.integers(min_value=0, max_value=60)
pads = st.sampled_from(PAD_MODES)


@given(n=lengths, size=sizes, pad=pads)
def test_one_window_per_frame_of_the_right_size_and_range(n, size, pad):
    windows = window_indices(n, size, pad)
    assert len(windows) == n
    for w in windows:
        assert len(w) == size
        assert all(0 <= j < n for j in w)


@given(n=lengths.filter(lambda n: n > 0), size=sizes, pad=pads)
def test_centre_is_the_frame_itself(n, size, pad):
    r = size // 2
    for i, w in enumerate(window_indices(n, size, pad)):
        assert w[r] == i


@given(n=lengths.filter(lambda n: n > 0), size=sizes)
def test_replicate_is_clamping(n, size):
    r = size // 2
    for i, w in enumerate(window_indices(n, size, "replicate")):
        assert w == [min(max(i + k, 0), n - 1) for k in range(-r, r + 1)]
        # Non-decreasing, steps of 0 or 1: time never runs backwards in a window.
        assert all(b - a in (0, 1) for a, b in zip(w, w[1:]))


@given(n=lengths.filter(lambda n: n > 0), size=sizes)
def test_reflect_is_symmetric_about_the_centre_inside_the_clip(n, size):
    r = size // 2
    for i, w in enumerate(window_indices(n, size, "reflect")):
        for k in range(1, r + 1):
            # Neighbours at the same distance on both sides are mirror images where both exist.
            if 0 <= i - k and i + k < n:
                assert (w[r - k], w[r + k]) == (i - k, i + k)
        # A neighbour is never farther (in index) than its offset.
        assert all(abs(j - i) <= abs(k - r) for k, j in enumerate(w))


@given(n=lengths, size=sizes, pad=pads)
def test_interior_windows_are_plain_ranges(n, size, pad):
    r = size // 2
    for i, w in enumerate(window_indices(n, size, pad)):
        if r <= i < n - r:
            assert w == list(range(i - r, i + r + 1))


@given(n=lengths, size=sizes)
@settings(max_examples=150)
def test_streaming_windows_equal_the_reference(n, size):
    frames = [f"f{i}" for i in range(n)]
    got = list(sliding_windows(iter(frames), size))
    want = [[frames[j] for j in w] for w in window_indices(n, size, "replicate")]
    assert got == want


@given(n=lengths, size=sizes)
def test_streaming_holds_no_more_than_a_window(n, size):
    # A generator that records how far ahead the consumer has pulled when each window arrives.
    pulled = {"n": 0}

    def source():
        for i in range(n):
            pulled["n"] = i + 1
            yield i

    r = size // 2
    for i, w in enumerate(sliding_windows(source(), size)):
        assert pulled["n"] <= min(n, i + r + 1)  # never reads beyond the window's last frame
        assert w[r] == i


@given(size=st.integers(min_value=-5, max_value=0) | st.integers(min_value=2, max_value=40).filter(lambda s: s % 2 == 0))
def test_bad_window_sizes_are_rejected(size):
    with pytest.raises(ValueError):
        window_indices(5, size)
    with pytest.raises(ValueError):
        list(sliding_windows([1, 2, 3], size))


@given(h=st.integers(1, 40), w=st.integers(1, 40), m=st.integers(1, 17), lead=st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_stack_windows_and_replicate_margin(h, w, m, lead):
    x = torch.arange(lead * 3 * h * w, dtype=torch.float32).reshape(lead, 3, h, w)
    y, h0, w0 = stack_windows([list(x)], m)
    assert (h0, w0) == (h, w)
    y = replicate_margin(y, h, w)[0]
    # the same as PyTorch's replication pad
    assert torch.equal(y, torch.nn.functional.pad(x, (0, y.shape[-1] - w, 0, y.shape[-2] - h), mode="replicate"))
    assert y.shape[-2] % m == 0 and y.shape[-1] % m == 0
    assert y.shape[-2] - h < m and y.shape[-1] - w < m
    assert torch.equal(y[..., :h, :w], x)  # the picture is untouched
    # Replicated edges: every padded row/column repeats the last real one.
    assert torch.equal(y[..., h:, :w], x[..., h - 1:h, :].expand(*x.shape[:-2], y.shape[-2] - h, w))
    assert torch.equal(y[..., :, w:], y[..., :, w - 1:w].expand(*y.shape[:-1], y.shape[-1] - w))


@given(w=st.integers(1, 10_000), h=st.integers(1, 10_000))
def test_even_size(w, h):
    ew, eh = even_size(w, h)
    assert ew % 2 == 0 and eh % 2 == 0
    assert ew - w in (0, 1) and eh - h in (0, 1)


fps_values = st.sampled_from([Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(50), Fraction(60)])
time_bases = st.sampled_from([Fraction(1, 1000), Fraction(1, 90000), Fraction(1, 12800), Fraction(1, 30000)])


@given(fps=fps_values, tb=time_bases, n=st.integers(3, 80), offset=st.integers(0, 10_000))
def test_retime_plan_leaves_constant_rate_alone(fps, tb, n, offset):
    ticks = [offset + round(i / (fps * tb)) for i in range(n)]
    assert retime_plan(ticks, tb, Fraction(0), fps) is None


@given(tb=time_bases, gaps=st.lists(st.integers(1, 5000), min_size=2, max_size=60),
       fps=fps_values, start=st.integers(0, 1000), shuffle=st.randoms())
def test_retime_plan_keeps_every_timestamp_in_order(tb, gaps, fps, start, shuffle):
    ticks = [start]
    for g in gaps:
        ticks.append(ticks[-1] + g)
    packets = list(ticks)
    shuffle.shuffle(packets)  # decode order differs from display order with B-frames
    plan = retime_plan(packets, tb, Fraction(start) * tb, fps)
    if plan is None:
        return
    assert len(plan) == len(ticks)
    assert plan == sorted(plan)
    assert plan[0] == pytest.approx(0.0, abs=1e-9)
    for got, t in zip(plan, ticks):
        assert got == pytest.approx(float((t - start) * tb * 1000), rel=1e-9, abs=1e-6)


@given(tb=time_bases, n=st.integers(0, 2))
def test_retime_plan_needs_three_frames(tb, n):
    assert retime_plan(list(range(0, 1000 * n, 1000)), tb, Fraction(0), Fraction(25)) is None


@given(n=st.integers(3, 30), k=st.integers(0, 29))
def test_retime_plan_gives_up_on_missing_pts(n, k):
    assume(k < n)
    ticks: list = [i * 40 for i in range(n)]
    ticks[k] = None
    assert retime_plan(ticks, Fraction(1, 1000), Fraction(0), Fraction(10)) is None


def test_retime_plan_catches_a_lying_rate_header():
    # Evenly spaced at 25 fps, but the header says 50: the encode would play twice as fast.
    ticks = [i * 40 for i in range(10)]
    assert retime_plan(ticks, Fraction(1, 1000), Fraction(0), Fraction(25)) is None
    assert retime_plan(ticks, Fraction(1, 1000), Fraction(0), Fraction(50)) == [float(t) for t in ticks]
