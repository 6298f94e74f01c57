"""DIDNet Lite (didtv/models/lite.py), its fused CPU pass and ``--model auto`` per device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from didtv.models import native, registry
from didtv.models.didnet import TINY_CONFIG, DIDNet, sdr_to_pq_bt2408
from didtv.models.lite import LITE_CONFIG, DIDLite

needs_kernel = pytest.mark.skipif(native.lite_expand_kernel() is None,
                                  reason="no C compiler (cc/gcc): the native kernel cannot be built")


def _frames(b=2, h=16, w=24, seed=0):
    return torch.rand(b, 7, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _perturbed(seed=0) -> DIDLite:
    """A Lite whose LUTs, local correction and restoration are all non-zero."""
    torch.manual_seed(seed)
    m = DIDLite(**LITE_CONFIG).eval()
    with torch.no_grad():
        m.luts.normal_(0, 0.05)
        m.local.weight.normal_(0, 0.2)
        m.local.bias.normal_(0, 0.02)
        m.aux.weight.normal_(0, 0.1)
    return m


def test_registry_copy_matches_and_budget_is_a_twentieth_of_tiny():
    assert registry.get_info("lite").config == LITE_CONFIG
    lite = DIDLite(**LITE_CONFIG).flops(1080, 1920)["total"]
    tiny = DIDNet(**TINY_CONFIG).flops(1080, 1920)["total"]
    assert lite <= tiny / 20, (lite / 1e9, tiny / 1e9)
    assert lite == sum(v for k, v in DIDLite(**LITE_CONFIG).flops(1080, 1920).items() if k != "total")


def test_untrained_lite_is_bt2408_of_its_input():
    """LUTs and local correction start at zero: with the restoration zeroed too, exactly BT.2408."""
    m = DIDLite(**LITE_CONFIG).eval()
    with torch.no_grad():
        m.aux.weight.zero_()
        m.aux.bias.zero_()
    x = _frames()
    m.fused_expand = False
    hdr, clean = m(x)
    assert torch.equal(clean, x[:, 3])
    assert torch.allclose(hdr, sdr_to_pq_bt2408(x[:, 3]), atol=1e-6)


def test_shapes_gradients_and_bad_input():
    m = _perturbed().train()
    x = _frames(h=8, w=12).requires_grad_(False)
    hdr, clean = m(x)
    assert hdr.shape == clean.shape == (2, 3, 8, 12) and hdr.dtype == torch.float32
    (hdr.mean() + clean.mean()).backward()
    assert m.luts.grad.abs().sum() > 0 and m.inp.weight.grad.abs().sum() > 0
    assert m.condition.fc.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiples of 4"):
        m(_frames(h=10, w=12))
    with pytest.raises(ValueError, match=r"\(b, 7, 3, h, w\)"):
        m(torch.rand(1, 5, 3, 8, 8))
    with pytest.raises(ValueError, match="cond must be"):
        m(x, torch.zeros(2, 3))


def test_lut_axes_are_red_green_blue():
    """A LUT holding its own red / green / blue coordinate returns the pixel's R, G, B."""
    m = DIDLite(**{**LITE_CONFIG, "luts": 1, "lut_size": 5}).eval()
    g = torch.linspace(0, 1, 5)
    r_, g_, b_ = torch.meshgrid(g, g, g, indexing="ij")
    with torch.no_grad():
        m.luts.copy_(torch.stack([r_, g_, b_])[None])
        m.lut_weights.weight.zero_()
        m.lut_weights.bias.fill_(1.0)
    clean = torch.rand(1, 3, 8, 8)
    cond = torch.zeros(1, LITE_CONFIG["cond_size"])
    lut = torch.nn.functional.grid_sample(m.lut(cond), (clean.flip(1) * 2 - 1).permute(0, 2, 3, 1)[:, None],
                                          mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    assert torch.allclose(lut, clean, atol=1e-5)
    out = m.expand(clean, torch.zeros(1, 3, 2, 2), cond)
    assert torch.allclose(out, (sdr_to_pq_bt2408(clean) + clean).clamp(0, 1), atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_pass_equals_the_torch_expansion(channels_last):
    m = _perturbed(seed=1)
    if channels_last:
        m.use_channels_last()
    x = _frames(b=2, h=24, w=44, seed=2)  # 44: the AVX2 loop's 8-pixel steps and a scalar tail
    with torch.inference_mode():
        cond = m.condition_vector(x)
        m.fused_expand = False
        ref, _ = m(x, cond)
        m.fused_expand = True
        out, clean = m(x, cond)
    assert clean is None  # the fused pass writes the HDR only
    assert (out - ref).abs().max().item() * 1023 < 0.05  # well under a tenth of a 10-bit code
    assert (ref - sdr_to_pq_bt2408(x[:, 3])).abs().max() > 0.01  # the perturbation shows


@needs_kernel
def test_fused_pass_under_bf16_autocast_and_with_grad_falls_back():
    m = _perturbed(seed=3)
    x = _frames(b=1, h=16, w=16, seed=4)
    with torch.inference_mode():
        m.fused_expand = False
        ref, _ = m(x)
        m.fused_expand = True
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = m(x)
    assert out.dtype == torch.float32 and (out - ref).abs().max() < 0.02  # bf16 convolutions
    hdr, clean = m(x)  # gradients enabled: the PyTorch expansion, which also returns the SDR
    assert clean is not None


@pytest.mark.parametrize("size", [(6, 10), (33, 47), (1, 1)])
def test_runner_converts_odd_and_tiny_frames(size):
    from didtv.pipeline.runner import Runner

    h, w = size
    rng = np.random.default_rng(0)
    frames = [rng.random((3, h, w), dtype=np.float32) for _ in range(9)]
    out = list(Runner(_perturbed(seed=5), device="cpu").process(frames))
    assert len(out) == 9 and all(o.shape == (3, h, w) and np.isfinite(o).all() for o in out)


def test_auto_picks_per_device(monkeypatch):
    present = {"lite": True, "tiny": True}
    monkeypatch.setattr(registry.ModelInfo, "weights_present", lambda self: present.get(self.name, False))
    assert registry.auto_choice("cpu")[0] == "lite"
    assert registry.auto_choice("cuda:0")[0] == "tiny"
    name, reason = registry.auto_choice("cpu")
    assert "CPU" in reason and "lite" not in reason.split(":")[0]
    present["lite"] = False
    assert registry.auto_choice("cpu") == ("bt2408", "auto on CPU: no learned model's weights are installed")
    assert registry.auto_choice("cuda")[0] == "tiny"
    present["tiny"] = False
    assert registry.auto_choice("cuda")[0] == "bt2408"


def test_native_march_override_changes_the_flags(monkeypatch):
    monkeypatch.delenv("DIDTV_NATIVE_MARCH", raising=False)
    assert native.cflags() == native.CFLAGS
    monkeypatch.setenv("DIDTV_NATIVE_MARCH", "x86-64-v3")
    flags = native.cflags()
    assert "-march=x86-64-v3" in flags and "-march=native" not in flags
    assert "-mprefer-vector-width=512" not in flags


@needs_kernel
def test_an_avx2_build_of_the_fused_pass_gives_the_same_numbers(monkeypatch):
    m = _perturbed(seed=6)
    x = _frames(b=1, h=16, w=24, seed=7)
    with torch.inference_mode():
        ref, _ = m(x)
        monkeypatch.setenv("DIDTV_NATIVE_MARCH", "x86-64-v3")
        native.forget()
        try:
            assert native.lite_expand_kernel() is not None
            out, _ = m(x)
        finally:
            monkeypatch.delenv("DIDTV_NATIVE_MARCH")
            native.forget()
    assert (out - ref).abs().max().item() * 1023 < 0.01


def test_lut_regularization_is_zero_at_the_start_and_smooths_a_spike():
    m = DIDLite(**LITE_CONFIG)
    assert m.regularization().item() == 0.0
    with torch.no_grad():
        m.luts[0, 0, 8, 8, 8] = 1.0
    reg = m.regularization()
    reg.backward()
    g = m.luts.grad[0, 0]
    assert reg.item() > 0 and g[8, 8, 8] > 0  # pulls the spike down...
    assert g[7, 8, 8] < 0 and g[8, 9, 8] < 0 and g[8, 8, 7] < 0  # ...and its neighbours up
    assert g[0, 0, 0] == 0


def test_strided_input_conv_is_unshuffle_then_1x1():
    m = _perturbed(seed=8)
    z = torch.rand(2, 9, 16, 24)
    ref = m.inp(torch.nn.functional.pixel_unshuffle(z, 4))
    weight = m.inp.weight.reshape(m.inp.out_channels, -1, 4, 4)
    assert torch.allclose(torch.nn.functional.conv2d(z, weight, m.inp.bias, stride=4), ref, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("channels,scale", [(24, 4), (8, 2), (64, 4)])
def test_native_input_layer_equals_the_strided_conv(channels, scale):
    """The C input layer (unshuffle + 1x1 + LeakyReLU) equals the strided conv and activation:
    the shipped shape (24 channels, scale 4: the specialised loop), a generic one, the largest
    allowed; on a strided view of the window (the centre's neighbours of a 7-frame stack), and
    channels-last out. More than 64 channels: None (the caller falls back to the conv)."""
    import torch.nn.functional as F

    cfg = {**LITE_CONFIG, "channels": channels, "scale": scale}
    m = DIDLite(**cfg).eval()
    with torch.no_grad():
        m.inp.bias.normal_(0, 0.1)
    x = torch.rand(2, 7, 3, 4 * scale, 6 * scale, generator=torch.Generator().manual_seed(3))
    z = x[:, 2:5].reshape(2, 9, 4 * scale, 6 * scale)
    weight = m.inp.weight.reshape(channels, -1, scale, scale)
    with torch.inference_mode():
        ref = m.act(F.conv2d(z, weight, m.inp.bias, stride=scale))
        out = m._input_native(z)
        strided = m._input_native(x.transpose(0, 1)[2:5].transpose(0, 1).reshape(2, 9, 4 * scale, 6 * scale))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(strided, ref, atol=1e-5)
    assert (ref < 0).any()  # the activation's negative side is exercised
    wide = DIDLite(**{**LITE_CONFIG, "channels": 65}).eval()
    with torch.inference_mode():
        assert wide._input_native(z[..., :16, :16] if scale == 4 else z) is None


def test_motion_guard_edits_only_the_frames_lite_reads(monkeypatch):
    from didtv.pipeline import runner as runner_mod

    seen = []
    monkeypatch.setattr(runner_mod, "motion_guard", lambda x, inplace: seen.append(x.shape[1]))
    frames = [np.random.default_rng(i).random((3, 8, 8), dtype=np.float32) for i in range(7)]
    runner_mod.Runner(_perturbed(), device="cpu", motion_guard=True).infer(frames)
    assert seen == [3]  # context 1: the centre and its two neighbours
    seen.clear()
    runner_mod.Runner(DIDLite(**{**LITE_CONFIG, "context": 0}), device="cpu", motion_guard=True).infer(frames)
    assert seen == []


def test_lean_runner_equals_the_whole_window_through_the_model():
    """The runner's lean path (3 frames stacked at full size, the condition from per-frame
    thumbnails pooled once) gives what the model gives on the whole 7-frame window, with a hard
    cut inside the clip (frames of the other shot replaced by the shot's nearest frame in both);
    and Runner.process equals infer_batch on the same windows."""
    from didtv.pipeline.runner import Runner, ShotCondition
    from didtv.pipeline.window import sliding_windows

    m = _perturbed(1)
    runner = Runner(m, device="cpu", precision="fp32", motion_guard=False)
    assert runner.lean
    g = torch.Generator().manual_seed(5)
    dark = [torch.rand(3, 20, 28, generator=g) * 0.2 for _ in range(5)]
    bright = [0.6 + torch.rand(3, 20, 28, generator=g) * 0.4 for _ in range(5)]
    frames = dark + bright  # a hard cut between frame 4 and 5
    windows = list(sliding_windows(frames, 7))
    with torch.inference_mode():
        lean = runner.infer_batch(windows)
        for i, w in enumerate(windows):
            shot = [f for f in w if (f.mean() > 0.5) == (w[3].mean() > 0.5)]
            nearest = [w[j] if (w[j].mean() > 0.5) == (w[3].mean() > 0.5) else
                       min(((abs(k - j), w[k]) for k in range(7) if (w[k].mean() > 0.5) == (w[3].mean() > 0.5)),
                           key=lambda p: p[0])[1] for j in range(7)]
            assert shot
            ref, _ = m(torch.stack(nearest)[None])
            np.testing.assert_allclose(lean[i], ref[0].numpy(), atol=2e-5)
        held = runner.infer_batch(windows, ShotCondition())  # the condition held per shot
        streamed = list(runner.process([f.numpy() for f in frames]))
    assert len(streamed) == len(frames)
    for a, b in zip(streamed, held):
        np.testing.assert_allclose(a, b, atol=2e-5)  # batches of another size: float rounding
