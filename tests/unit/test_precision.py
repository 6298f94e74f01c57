"""--precision: what runs where, and refusals that say why."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from didtv.errors import UsageError
from didtv.models.registry import load_model
from didtv.pipeline import runner as runner_mod
from didtv.pipeline.runner import Runner, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def tiny_spec():
    return load_model("tiny", pretrained=False).spec


@pytest.mark.parametrize("native,expected", [(False, "fp32"), (True, "bf16")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, tiny_spec, native, expected):
    monkeypatch.setattr(runner_mod, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", CPU, tiny_spec) == expected


def test_auto_on_cuda_is_fp16(tiny_spec):
    assert resolve_precision("auto", CUDA, tiny_spec) == "fp16"
    assert resolve_precision("bf16", CUDA, tiny_spec) == "bf16"


def test_refusals(monkeypatch, tiny_spec):
    monkeypatch.setattr(runner_mod, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(UsageError, match="no native bfloat16"):
        resolve_precision("bf16", CPU, tiny_spec)
    with pytest.raises(UsageError, match="needs a CUDA GPU"):
        resolve_precision("fp16", CPU, tiny_spec)
    with pytest.raises(UsageError, match="unknown precision"):
        resolve_precision("int8", CPU, tiny_spec)
    analytic = load_model("bt2408").spec
    assert resolve_precision("auto", CUDA, analytic) == "fp32"
    with pytest.raises(UsageError, match="float32 only"):
        resolve_precision("fp16", CUDA, analytic)


def test_bf16_runs_and_stays_close(monkeypatch):
    """bf16 autocast really runs (where the CPU lacks it, we force it on: slow but correct)."""
    monkeypatch.setattr(runner_mod, "cpu_has_native_bf16", lambda: True)
    net = load_model("tiny")
    rng = np.random.default_rng(0)
    window = [rng.random((3, 32, 48), dtype=np.float32) for _ in range(7)]
    ref = Runner(net, device="cpu", precision="fp32").infer(window)
    half = Runner(net, device="cpu", precision="bf16")
    out = half.infer(window)
    assert half.precision == "bf16" and out.dtype == np.float32
    mse = float(np.mean((out - ref) ** 2))
    assert 0 < mse and 10 * np.log10(1 / mse) > 35  # differs (it ran in bf16), but only slightly


def test_batching_gives_the_same_frames():
    net = load_model("tiny")
    rng = np.random.default_rng(1)
    frames = [rng.random((3, 16, 24), dtype=np.float32) for _ in range(5)]
    one = list(Runner(net, device="cpu", batch=1).process(frames))
    three = list(Runner(net, device="cpu", batch=3).process(frames))
    assert len(three) == 5
    for a, b in zip(one, three):
        # fp32 sums in another order (batched convolutions): 1e-5 is 1% of a 10-bit code; the
        # retrained Tiny's weights showed 3.8e-6 on one value of 1152
        np.testing.assert_allclose(a, b, atol=1e-5)
