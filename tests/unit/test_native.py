"""The fused C kernel for the deformable convolution's sampling (didtv/models/native)."""

from __future__ import annotations

import shutil

import pytest
import torch

from didtv.models import native
from didtv.models.align import (
    deform_conv2d,
    deform_conv2d_native,
    deform_conv2d_torch,
    native_deform_available,
)
from didtv.models.registry import load_model
from test_align import _random_case, naive_deform_conv2d

HAS_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None
needs_kernel = pytest.mark.skipif(not HAS_CC, reason="no C compiler (cc/gcc): the native kernel cannot be built")


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """A kernel cache of its own in tmp_path, built again on the next call."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    native.forget()
    yield tmp_path
    native.forget()


def _f32(*tensors):
    return tuple(None if t is None else t.float() for t in tensors)


@needs_kernel
def test_the_kernel_builds_where_a_compiler_is():
    assert native_deform_available()


@needs_kernel
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 2, "dilation": 2, "h": 6, "w": 7},
        {"groups": 1, "k": 1, "padding": 0},
        {"groups": 4, "c_in": 4, "h": 4, "w": 4},
        {"b": 1, "c_in": 21, "groups": 7, "c_out": 5, "h": 9, "w": 300},  # TSAF's grouping, > one block
    ],
)
def test_native_matches_the_naive_loop(kwargs):
    stride, padding, dilation = (kwargs.get(n, d) for n, d in (("stride", 1), ("padding", 1), ("dilation", 1)))
    x, offset, mask, weight, bias = _random_case(0, **kwargs)
    want = naive_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)
    with torch.no_grad():
        got = deform_conv2d_native(*_f32(x, offset, mask, weight, bias), stride=stride, padding=padding,
                                   dilation=dilation)
    assert got.dtype == torch.float32
    # float32 coordinates near x = 300 are good to ~2e-5 px; outputs are sums of ~200 products
    # of size ~3, so 5e-4 is float rounding, while a wrong tap, channel or corner is off by ~1.
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=5e-4)


@needs_kernel
def test_native_without_mask_and_in_row_chunks():
    x, offset, mask, weight, bias = _f32(*_random_case(6, h=9, w=5, stride=2, padding=2, dilation=2))
    geometry = {"stride": 2, "padding": 2, "dilation": 2}
    for m in (mask, None):
        want = deform_conv2d_torch(x, offset, m, weight, bias, **geometry)
        for budget in (1, 2 * 4 * 9 * 3 * 2, 1 << 22):  # one row at a time; two rows; all at once
            got = deform_conv2d_native(x, offset, m, weight, bias, max_elements=budget, **geometry)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_integer_offsets_shift_the_image_and_outside_reads_zero():
    x = torch.arange(30, dtype=torch.float32).view(1, 1, 5, 6)
    offset = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 5, 6)
    out = deform_conv2d_native(x, offset, None, torch.ones(1, 1, 1, 1))
    want = torch.zeros_like(x)
    want[..., :4, 2:] = x[..., 1:, :4]
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    far = deform_conv2d_native(x, torch.full((1, 2, 5, 6), 1e9), None, torch.ones(1, 1, 1, 1))
    assert torch.all(far == 0)


@needs_kernel
def test_bfloat16_autocast_writes_bfloat16_columns_like_the_torch_path():
    """Under CPU bf16 autocast (how --precision bf16 runs), offsets and masks arrive in bf16 and
    the matmul runs in bf16; both paths give the same dtype and agree to bf16 rounding."""
    x, offset, mask, weight, bias = _f32(*_random_case(7, b=1, c_in=21, groups=7, c_out=8, h=12, w=40))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        off16, mask16 = offset.bfloat16(), mask.bfloat16()
        want = deform_conv2d_torch(x, off16, mask16, weight, bias, padding=1)
        got = deform_conv2d_native(x, off16, mask16, weight, bias, padding=1)
        no_bias = deform_conv2d_native(x, off16, mask16, weight, None, padding=1)
    # the autocast dtype with the bias too, as F.conv2d under autocast
    assert got.dtype == want.dtype == no_bias.dtype == torch.bfloat16
    scale = want.abs().max()
    assert (got - want).abs().max() <= 0.02 * scale
    exact = deform_conv2d_torch(x, offset, mask, weight, bias, padding=1)
    assert (got - exact).abs().max() <= 0.02 * scale


@needs_kernel
def test_dispatch_takes_native_for_inference_and_torch_for_autograd_and_float64():
    x, offset, mask, weight, bias = _random_case(5)
    x32, off32, mask32, w32, b32 = _f32(x, offset, mask, weight, bias)
    with torch.no_grad():
        torch.testing.assert_close(deform_conv2d(x32, off32, mask32, w32, b32, padding=1),
                                   deform_conv2d_native(x32, off32, mask32, w32, b32, padding=1), rtol=0, atol=0)
    # float64 (tests, gradcheck) stays on the exact torch path
    torch.testing.assert_close(deform_conv2d(x, offset, mask, weight, bias, padding=1),
                               deform_conv2d_torch(x, offset, mask, weight, bias, padding=1), rtol=0, atol=0)
    # training: parameters require grad, so the differentiable torch path runs
    w_train = w32.clone().requires_grad_()
    out = deform_conv2d(x32, off32, mask32, w_train, b32, padding=1)
    assert out.requires_grad  # the C kernel's output would have no autograd history
    out.sum().backward()
    assert w_train.grad is not None and torch.isfinite(w_train.grad).all()
    torch.testing.assert_close(out.detach(), deform_conv2d_torch(x32, off32, mask32, w32, b32, padding=1),
                               rtol=1e-6, atol=1e-6)


@needs_kernel
def test_tiny_gives_the_same_output_with_and_without_the_kernel(monkeypatch):
    model = load_model("tiny").eval()
    frames = torch.rand(1, 7, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fused = model(frames)
        monkeypatch.setenv("DIDTV_NATIVE", "0")
        native.forget()
        assert not native_deform_available()
        plain = model(frames)
    native.forget()
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-5)


@needs_kernel
def test_the_build_is_cached_per_source_and_cpu(fresh_kernel):
    assert native.deform_kernel() is not None
    built = list((fresh_kernel / "didtv" / "native").glob("deform_sample-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    native.forget()
    assert native.deform_kernel() is not None
    assert built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert list(fresh_kernel.rglob("*.so")) == built  # no temporary left behind


def test_no_compiler_or_a_failed_build_falls_back_to_torch(fresh_kernel, monkeypatch, tmp_path):
    monkeypatch.setenv("DIDTV_CC", "didtv-no-such-compiler")
    assert native.deform_kernel() is None
    assert not native_deform_available()
    failing = tmp_path / "failing-cc"
    failing.write_text("#!/bin/sh\necho 'cc: error: something broke' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("DIDTV_CC", str(failing))
    native.forget()
    assert native.deform_kernel() is None
    assert not list(tmp_path.rglob("*.so"))  # nothing half-built left to be loaded later
    x, offset, mask, weight, bias = _f32(*_random_case(5))
    with torch.no_grad():
        torch.testing.assert_close(deform_conv2d(x, offset, mask, weight, bias, padding=1),
                                   deform_conv2d_torch(x, offset, mask, weight, bias, padding=1), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="not available"):
        deform_conv2d_native(x, offset, mask, weight, bias, padding=1)


def test_didtv_native_0_switches_it_off(fresh_kernel, monkeypatch):
    monkeypatch.setenv("DIDTV_NATIVE", "0")
    assert native.deform_kernel() is None


@needs_kernel
def test_raw_activations_are_applied_in_the_kernel():
    """TSAF's tanh/sigmoid computed by the kernel as it samples (raw_activation) equal applying
    them first, for channel slices of one raw tensor with a batch of two, saturated values
    included (|raw| up to ~40: tanh -> +-1, sigmoid -> 0 or 1)."""
    gen = torch.Generator().manual_seed(8)
    b, groups, taps, h, w = 2, 7, 9, 10, 37
    x = torch.randn(b, 21, h, w, generator=gen)
    raw = torch.randn(b, 3 * groups * taps, h, w, generator=gen) * 2
    raw[:, :, 0, :5] *= 20
    weight, bias = torch.randn(6, 21, 3, 3, generator=gen), torch.randn(6, generator=gen)
    raw_offset, raw_mask = raw[:, : 2 * groups * taps], raw[:, 2 * groups * taps :]
    for scale, inner in ((16.0, 1.0), (4.0, 4.0)):
        want = deform_conv2d_torch(x, scale * torch.tanh(inner * raw_offset), torch.sigmoid(raw_mask),
                                   weight, bias, padding=1)
        got = deform_conv2d_native(x, raw_offset, raw_mask, weight, bias, padding=1,
                                   raw_activation=(scale, inner))
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@needs_kernel
def test_tsaf_takes_the_fused_path_for_inference_and_matches_the_torch_path(monkeypatch):
    from didtv.models import align

    torch.manual_seed(0)
    tsaf = align.TSAF(channels=8, offset_channels=8, max_offset=4.0).eval()
    with torch.no_grad():
        tsaf.offsets.out.weight.normal_(0, 0.05)  # non-zero offsets and masks away from 0.5
        frames = torch.rand(2, 7, 3, 16, 24)
        calls = []
        real = align.deform_conv2d_native
        monkeypatch.setattr(align, "deform_conv2d_native", lambda *a, **k: calls.append(k) or real(*a, **k))
        fused = tsaf(frames)
        assert calls and calls[0]["raw_activation"] == (4.0, align.OFFSET_SLOPE / 4.0)
        from didtv.models import deform

        monkeypatch.setattr(align, "_native_applies", lambda *a: False)  # TSAF's fused call
        monkeypatch.setattr(deform, "_native_applies", lambda *a: False)  # and inside deform_conv2d
        plain = tsaf(frames)
    assert len(calls) == 1
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("groups, c", [(7, 21), (2, 4), (1, 5), (2, 16)])
def test_pack_groups_lays_each_groups_channels_side_by_side(groups, c):
    x = torch.randn(2, c, 5, 7)
    cg = c // groups
    cp = cg + -cg % 4
    got = torch.full((2, groups, 5, 7, cp), float("nan"))
    native.pack_kernel()(x.data_ptr(), got.data_ptr(), 2, c, 5, 7, groups, cp, 2)
    want = torch.zeros(2, groups, 5, 7, cp)
    want[..., :cg] = x.view(2, groups, cg, 5, 7).permute(0, 1, 3, 4, 2)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@needs_kernel
@pytest.mark.parametrize("raw", [False, True])
def test_channels_last_offsets_are_read_as_they_lie_and_the_result_can_be_channels_last(raw):
    """Offsets and masks as channel slices of one channels-last tensor (what the offset U-Net's
    last conv gives in a channels-last model) give exactly the NCHW result, for a batch of two;
    channels_last=True gives the same values in channels-last memory."""
    gen = torch.Generator().manual_seed(11)
    b, groups, taps, h, w = 2, 7, 9, 10, 300
    x = torch.randn(b, 21, h, w, generator=gen)
    both = torch.randn(b, 3 * groups * taps, h, w, generator=gen) * (0.5 if raw else 2.0)
    if not raw:
        both[:, 2 * groups * taps :] = torch.rand(b, groups * taps, h, w, generator=gen)
    weight, bias = torch.randn(6, 21, 3, 3, generator=gen), torch.randn(6, generator=gen)
    act = (16.0, 1.0) if raw else None
    n_off = 2 * groups * taps

    def run(t, **kw):
        return deform_conv2d_native(x, t[:, :n_off], t[:, n_off:], weight, bias, padding=1, raw_activation=act, **kw)

    with torch.no_grad():
        want = run(both)
        nhwc = both.contiguous(memory_format=torch.channels_last)
        assert nhwc[:, :n_off].stride(1) == 1  # really strided channel slices
        got = run(nhwc)
        cl = run(both, channels_last=True)
    assert torch.equal(got, want)
    assert cl.is_contiguous(memory_format=torch.channels_last) and not cl.is_contiguous()
    torch.testing.assert_close(cl, want, rtol=1e-6, atol=1e-5)
    with torch.no_grad():  # a layout the kernel cannot stride through (rows not evenly spaced) is copied
        odd = both.transpose(2, 3).contiguous().transpose(2, 3)
        torch.testing.assert_close(run(odd), want, rtol=0, atol=0)


@needs_kernel
@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_a_channels_last_model_gives_the_nchw_output(precision):
    """DIDNet.use_channels_last (what the CPU runner does) changes the memory layout of every
    convolution and of the DCN's result, not the numbers: fp32 within float rounding, bf16 within
    a fraction of a ten-bit code."""
    import copy

    model = load_model("tiny").eval()
    cl_model = copy.deepcopy(model)
    cl_model.use_channels_last()
    assert cl_model.tsaf.channels_last and cl_model.tsaf.offsets.out.weight.is_contiguous(
        memory_format=torch.channels_last)
    frames = torch.rand(1, 7, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != torch.float32):
        feat = cl_model.features(frames)
        want, got = model(frames)[0], cl_model(frames)[0]
    assert feat.is_contiguous(memory_format=torch.channels_last) and feat.dtype == precision
    tol = 1e-5 if precision == torch.float32 else 1.0 / 1023
    torch.testing.assert_close(got, want, rtol=0, atol=tol)


def _has_avx512() -> bool:
    return "avx512f" in native._cpu_flags().split()


@needs_kernel
@pytest.mark.skipif(not _has_avx512(), reason="no AVX-512 on this CPU: the kernel is plain C only")
@pytest.mark.parametrize("offset_dtype", [torch.float32, torch.bfloat16])
def test_the_avx512_paths_give_the_plain_c_columns_bit_for_bit(fresh_kernel, monkeypatch, offset_dtype):
    """The AVX-512 gathers (channels-last offsets and masks, 63 mask channels: an odd last one)
    and the vectorised stores (float32 and bfloat16 columns) write exactly what the plain-C
    kernel writes, including a row of 300 pixels (a block and a tail that is not a multiple of 16)."""
    gen = torch.Generator().manual_seed(5)
    b, groups, taps, h, w = 2, 7, 9, 6, 300
    x = torch.rand(b, 21, h, w, generator=gen)
    both = (torch.randn(b, 3 * groups * taps, h, w, generator=gen) * 0.7).to(offset_dtype)
    both = both.contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(6, 21, 3, 3, generator=gen), torch.randn(6, generator=gen)
    n_off = 2 * groups * taps

    def run(precision):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
            return deform_conv2d_native(x, both[:, :n_off], both[:, n_off:], weight, bias, padding=1,
                                        raw_activation=(4.0, 0.25), channels_last=True)

    fast = [run(p) for p in (torch.float32, torch.bfloat16)]
    monkeypatch.setattr(native, "CFLAGS", native.CFLAGS + native.GENERIC_CFLAGS)
    native.forget()
    plain = [run(p) for p in (torch.float32, torch.bfloat16)]
    assert len(list(fresh_kernel.rglob("*.so"))) == 2  # really two builds
    for got, want in zip(fast, plain):
        assert torch.equal(got, want)
