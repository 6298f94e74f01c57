"""Modulated deformable convolution (DCNv2) for TSAF (:mod:`didtv.models.align`).

Deformable convolution comes in three kernels behind :func:`deform_conv2d`: pure PyTorch (one
``grid_sample`` over all k*k taps, multiply by the mask, then one matmul with the weights; the
reference, and the one autograd uses); for CPU inference, the same sampling fused into one C pass
(:func:`deform_conv2d_native`, :mod:`didtv.models.native`; TSAF hands it the U-Net's raw output
so it applies the tanh/sigmoid too); on CUDA, ``torchvision.ops.deform_conv2d`` when torchvision
is importable (on the CPU it is slower than either, RESEARCH.md). All follow torchvision's
tensor layout:

- ``offset``: ``(b, 2 * g * kh * kw, h_out, w_out)``; for offset group ``g`` and tap ``k``
  (row-major over the kernel), channel ``2 * (g * kh * kw + k)`` is the row (y) offset and the
  next one the column (x) offset, in pixels.
- ``mask``: ``(b, g * kh * kw, h_out, w_out)``, channel ``g * kh * kw + k``.
- input channels are split into ``g`` contiguous groups, each sampled at its own offsets.
- samples outside the image read zeros (bilinear weights of outside corners multiply zero),
  exactly like DCN's zero padding.

The sampling always runs in float32 (or float64): in bfloat16 a coordinate near pixel 512 is only
good to 2 px, which would make alignment meaningless. The matmul then runs in the input dtype.
"""

from __future__ import annotations

import ctypes
import math

import torch
import torch.nn.functional as F
from torch import nn

from didtv.models import native

try:  # optional: only used on CUDA, never required
    from torchvision.ops import deform_conv2d as _tv_deform_conv2d
except Exception:  # pragma: no cover - torchvision absent or broken against this torch
    _tv_deform_conv2d = None


def torchvision_available() -> bool:
    """True when ``torchvision.ops.deform_conv2d`` could be imported."""
    return _tv_deform_conv2d is not None


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _dcn_geometry(x, offset, mask, weight, stride, padding, dilation) -> tuple[int, ...]:
    """Checks the shapes of a DCN call; returns
    ``(b, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, taps, groups)``."""
    b, c_in, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    if c_w != c_in:
        raise ValueError(f"weight expects {c_w} input channels, x has {c_in}")
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps = kh * kw
    if offset.shape[0] != b or offset.shape[-2:] != (h_out, w_out) or offset.shape[1] % (2 * taps):
        raise ValueError(
            f"offset must be (b={b}, 2*groups*{taps}, {h_out}, {w_out}), got {tuple(offset.shape)}"
        )
    groups = offset.shape[1] // (2 * taps)
    if c_in % groups:
        raise ValueError(f"{c_in} input channels cannot be split into {groups} offset groups")
    if mask is not None and tuple(mask.shape) != (b, groups * taps, h_out, w_out):
        raise ValueError(f"mask must be {(b, groups * taps, h_out, w_out)}, got {tuple(mask.shape)}")
    return b, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, taps, groups


# Left out of torch.compile graphs (Runner(torch_compile=True)): dynamo would unroll the loop over
# row chunks, one copy per chunk (about 100 at 1080p), and that compiled for minutes and ran
# slower than eager; with the DCN left eager, the rest of DIDNet compiles in about 20 s and runs
# 1.5-2x faster (docs/benchmarks.md, "torch.compile"). No effect without torch.compile.
@torch.compiler.disable
def deform_conv2d_torch(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    max_elements: int = 1 << 22,
) -> torch.Tensor:
    """Modulated deformable convolution (DCNv2) in pure PyTorch.

    ``y(p) = sum_k w_k * m_k(p) * x(p * stride - padding + p_k + dp_k(p)) + b``, with ``p_k`` the
    dilated kernel grid, ``dp_k`` the learned offset (Eq. 7) and ``m_k`` the mask.

    Args:
        x: ``(b, c_in, h, w)``.
        offset: ``(b, 2 * g * kh * kw, h_out, w_out)``, in pixels, (y, x) pairs (see module doc).
        mask: ``(b, g * kh * kw, h_out, w_out)`` or ``None`` (all ones: DCNv1).
        weight: ``(c_out, c_in, kh, kw)`` (no weight groups).
        bias: ``(c_out,)`` or ``None``.
        max_elements: the output is computed in row chunks of at most this many sampled values
            (``b * c_in * k * k * rows * w_out``) to bound memory; the result does not change.

    Returns:
        ``(b, c_out, h_out, w_out)`` in the matmul's dtype: ``weight``'s, or under autocast the
        autocast one (bias included, like ``F.conv2d`` under autocast), so a bf16 network's
        features stay bf16 after the DCN.
    """
    (b, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, taps,
     groups) = _dcn_geometry(x, offset, mask, weight, stride, padding, dilation)

    # Sample in row chunks so the (c_in * taps) x pixels column buffer stays bounded: a 1080p
    # frame with 21 channels and 9 taps would otherwise need ~1.5 GB at once. 4M values (16 MB
    # per temporary) is also the fastest size measured on CPU: Tiny's DCN at 960x544 took 2.3 s
    # with 32M-value chunks and 0.9 s with 4M (the elementwise passes stay nearer the caches).
    per_row = b * c_in * taps * w_out
    chunk = max(1, min(h_out, max_elements // max(per_row, 1)))
    geometry = (h, w, sh, sw, ph, pw, dh, dw, kh, kw, groups)
    outs = [
        _deform_rows(x, offset[:, :, r0 : r0 + chunk], None if mask is None else mask[:, :, r0 : r0 + chunk],
                     weight, r0, geometry)
        for r0 in range(0, h_out, chunk)
    ]
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1).to(out.dtype)
    return out


def _deform_rows(x, offset, mask, weight, row0: int, geometry) -> torch.Tensor:
    """Output rows ``row0 .. row0 + offset.shape[2]`` of :func:`deform_conv2d_torch`, no bias."""
    h, w, sh, sw, ph, pw, dh, dw, kh, kw, groups = geometry
    b, c_in = x.shape[:2]
    c_out = weight.shape[0]
    taps = kh * kw
    n_rows, w_out = offset.shape[-2:]
    # Coordinates in float32 at least (see module doc); float64 stays float64 for tests.
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    dev = x.device
    rows = torch.arange(row0, row0 + n_rows, device=dev, dtype=cdt) * sh - ph
    cols = torch.arange(w_out, device=dev, dtype=cdt) * sw - pw
    tap_y = (torch.arange(kh, device=dev, dtype=cdt) * dh).repeat_interleave(kw)  # (taps,)
    tap_x = (torch.arange(kw, device=dev, dtype=cdt) * dw).repeat(kh)
    base_y = rows.view(1, n_rows, 1) + tap_y.view(taps, 1, 1)  # (taps, rows, 1)
    base_x = cols.view(1, 1, w_out) + tap_x.view(taps, 1, 1)  # (taps, 1, w_out)

    off = offset.to(cdt).reshape(b, groups, taps, 2, n_rows, w_out)
    # grid_sample with align_corners=False puts pixel i's centre at (2i + 1) / n - 1.
    gx = (2 * (base_x + off[:, :, :, 1]) + 1) / w - 1  # (b, g, taps, rows, w_out)
    gy = (2 * (base_y + off[:, :, :, 0]) + 1) / h - 1
    grid = torch.stack((gx, gy), dim=-1).view(b * groups, taps * n_rows, w_out, 2)

    cg = c_in // groups
    src = x.to(cdt).reshape(b * groups, cg, h, w)
    sampled = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.view(b, groups, cg, taps, n_rows, w_out)
    if mask is not None:
        sampled = sampled * mask.to(cdt).reshape(b, groups, 1, taps, n_rows, w_out)
    # (b, c_in * taps, L): channel-major then tap, the order of weight.view(c_out, c_in * taps).
    columns = sampled.reshape(b, c_in * taps, n_rows * w_out).to(weight.dtype)
    out = torch.matmul(weight.reshape(c_out, c_in * taps), columns)
    return out.view(b, c_out, n_rows, w_out)


_NATIVE_DTYPES = {torch.float32: native.F32, torch.bfloat16: native.BF16}


def native_deform_available() -> bool:
    """True when the fused C sampling kernel (:mod:`didtv.models.native`) is built and loaded."""
    return native.deform_kernel() is not None


def _native_applies(x, offset, mask, weight) -> bool:
    """The fused kernel serves CPU inference in float32/bfloat16; everything else (autograd,
    float64 tests, CUDA) takes :func:`deform_conv2d_torch`."""
    tensors = [t for t in (x, offset, mask, weight) if t is not None]
    return (
        all(t.device.type == "cpu" for t in tensors)
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
        and x.dtype in _NATIVE_DTYPES
        and offset.dtype in _NATIVE_DTYPES
        and (mask is None or mask.dtype in _NATIVE_DTYPES)
        # the kernel indexes a packed group (h * w * channels rounded up to 4) with int32
        and 4 * x[0].numel() < 2**31
        and native_deform_available()
    )


@torch.compiler.disable  # ctypes calls cannot be traced; the DCN stays eager (see above)
def deform_conv2d_native(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    max_elements: int = 1 << 22,
    raw_activation: tuple[float, float] | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """:func:`deform_conv2d_torch` with the sampling in one fused C pass (CPU, no autograd).

    Same arguments, layout and result dtype; values agree within float rounding (the mask is
    folded into the bilinear weights instead of multiplied afterwards). The column matrix is
    written in the matmul's dtype (bfloat16 under CPU bf16 autocast) row chunk by row chunk, one
    reused buffer of at most ``max_elements`` values. Raises ``RuntimeError`` when the kernel is
    not available (check :func:`native_deform_available`).

    ``raw_activation=(scale, inner)``: ``offset`` and ``mask`` are pre-activation values and the
    kernel uses ``scale * tanh(inner * offset)`` and ``sigmoid(mask)`` (TSAF's activations, see
    :meth:`TSAF.offsets_and_mask`), computed in float32 as it samples, so the activated maps are
    never written out. ``offset`` and ``mask`` may then be channel slices of one tensor, in NCHW or
    channels-last layout (read as they lie).

    ``channels_last=True`` returns the result in channels-last memory layout, for a
    channels-last network after the DCN.
    """
    kernel = native.deform_kernel()
    if kernel is None:
        raise RuntimeError("the native deformable sampling kernel is not available")
    (b, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, taps,
     groups) = _dcn_geometry(x, offset, mask, weight, stride, padding, dilation)

    cdt = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else weight.dtype
    if cdt not in _NATIVE_DTYPES:
        cdt = torch.float32
    # the kernel reads each offset group's channels side by side, padded to a multiple of 4
    cg = c_in // groups
    frames = x.to(torch.float32).contiguous()
    src = torch.empty(b, groups, h, w, cg + -cg % 4)
    threads = torch.get_num_threads()
    native.pack_kernel()(frames.data_ptr(), src.data_ptr(), b, c_in, h, w, groups, src.shape[-1], threads)
    offset, off_strides = _kernel_strides(offset)
    mask, mask_strides = (None, None) if mask is None else _kernel_strides(mask)
    # The bias rides in the matmul: one more row of ones in the columns, the bias as one more
    # weight column (one rounding to the matmul's dtype, and no elementwise pass of its own).
    k = c_in * taps
    rows_per_item = k + (bias is not None)
    w2d = weight.reshape(c_out, k).to(cdt)
    if bias is not None:
        w2d = torch.cat([w2d, bias.reshape(c_out, 1).to(cdt)], 1)
    per_row = b * rows_per_item * w_out
    chunk = max(1, min(h_out, max_elements // max(per_row, 1)))
    buffer = torch.empty(per_row * chunk, dtype=cdt)
    # channels-last: (b, h_out, w_out, c_out) in memory. The matmul still computes weights x
    # columns (channels x pixels, 2-3x faster than pixels x channels with these shapes) and the
    # copy into the output transposes.
    out = torch.empty((b, h_out, w_out, c_out) if channels_last else (b, c_out, h_out, w_out), dtype=cdt)
    with torch.autocast("cpu", enabled=False):
        for r0 in range(0, h_out, chunk):
            n = min(chunk, h_out - r0)
            columns = buffer[: per_row * n].view(b, rows_per_item, n * w_out)
            if bias is not None:
                columns[:, k].fill_(1.0)
            status = kernel(
                src.data_ptr(), offset.data_ptr(), _NATIVE_DTYPES[offset.dtype],
                None if mask is None else mask.data_ptr(),
                _NATIVE_DTYPES[mask.dtype] if mask is not None else native.F32,
                raw_activation is not None, *(raw_activation or (1.0, 1.0)),
                off_strides, off_strides if mask is None else mask_strides,
                columns.data_ptr(), _NATIVE_DTYPES[cdt],
                b, c_in, h, w, groups, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, r0, n,
                rows_per_item, threads,
            )
            if status:
                raise MemoryError("the native deformable sampling could not allocate its buffers")
            rows = torch.matmul(w2d, columns)  # (b, c_out, pixels)
            if channels_last:
                out[:, r0 : r0 + n].copy_(rows.transpose(1, 2).view(b, n, w_out, c_out))
            else:
                out[:, :, r0 : r0 + n].copy_(rows.view(b, c_out, n, w_out))
    return out.permute(0, 3, 1, 2) if channels_last else out


def _kernel_strides(t: torch.Tensor):
    """``(t, its (batch, channel, pixel) strides as a C array)`` for the kernel, which reads any
    layout whose rows of pixels are evenly spaced (``stride(2) == w * stride(3)``): NCHW, the
    channels-last output of a convolution, channel slices of either. Anything else is copied."""
    w = t.shape[3]
    if t.stride(2) != w * t.stride(3):
        t = t.contiguous()
    return t, (ctypes.c_int64 * 3)(t.stride(0), t.stride(1), t.stride(3))


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    use_torchvision: bool | None = None,
) -> torch.Tensor:
    """DCNv2 with the fastest available kernel.

    ``use_torchvision=None`` picks torchvision's CUDA kernel when torchvision is importable and
    ``x`` is on CUDA, and the pure-PyTorch version otherwise. torchvision runs in float32 (its
    half-precision coordinates are too coarse, see module doc) and the result is cast back.
    Same arguments and result as :func:`deform_conv2d_torch`.
    """
    if use_torchvision is None:
        use_torchvision = torchvision_available() and x.is_cuda
    if use_torchvision:
        if not torchvision_available():
            raise RuntimeError("torchvision is not importable; use the pure-PyTorch deform_conv2d")
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        out = _tv_deform_conv2d(
            x.to(cdt),
            offset.to(cdt),
            weight.to(cdt),
            None if bias is None else bias.to(cdt),
            stride=_pair(stride),
            padding=_pair(padding),
            dilation=_pair(dilation),
            mask=None if mask is None else mask.to(cdt),
        )
        return out.to(x.dtype)
    if _native_applies(x, offset, mask, weight):
        return deform_conv2d_native(
            x, offset, mask, weight, bias, stride=stride, padding=padding, dilation=dilation
        )
    return deform_conv2d_torch(
        x, offset, mask, weight, bias, stride=stride, padding=padding, dilation=dilation
    )


def is_channels_last(t: torch.Tensor) -> bool:
    """True for a 4-D tensor whose channels lie innermost (channels-last, the CPU inference
    layout of :meth:`didtv.models.didnet.DIDNet.use_channels_last`), crops of one included."""
    return t.dim() == 4 and t.shape[1] > 1 and t.stride(1) == 1


def convs_to_channels_last(module: nn.Module) -> None:
    """Channels-last weights for every ``Conv2d`` in ``module`` (what oneDNN's CPU kernels are
    fastest with; docs/benchmarks.md, "Channels-last CPU inference")."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            conv.to(memory_format=torch.channels_last)


def conv_flops(conv: nn.Module, h_out: int, w_out: int) -> int:
    """FLOPs of a Conv2d/ConvTranspose2d at the given output size: 2 * MACs, bias not counted."""
    weight = conv.weight
    if isinstance(conv, nn.ConvTranspose2d):
        # Each input pixel scatters c_in/groups * c_out/groups * kh * kw products; the input is
        # the output divided by the stride.
        c_in, c_out_g, kh, kw = weight.shape
        sh, sw = conv.stride
        return 2 * c_in * c_out_g * kh * kw * (h_out // sh) * (w_out // sw)
    c_out, c_in_g, *kernel = weight.shape
    return 2 * c_out * c_in_g * math.prod(kernel) * h_out * w_out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer: holds the weights; offsets and masks are inputs (from :class:`OffsetUNet`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, offset_groups: int = 1):
        super().__init__()
        if in_channels % offset_groups:
            raise ValueError(f"in_channels={in_channels} is not divisible by offset_groups={offset_groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.offset_groups = offset_groups
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def taps(self) -> int:
        return self.kernel_size * self.kernel_size

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return deform_conv2d(x, offset, mask, self.weight, self.bias, padding=self.padding)

    def flops(self, h: int, w: int) -> int:
        """2 * MACs of the weight matmul + bilinear sampling (4 MACs per sampled value) + mask
        multiply (1 FLOP per sampled value)."""
        sampled = self.in_channels * self.taps * h * w
        return 2 * self.out_channels * self.in_channels * self.taps * h * w + sampled * (2 * 4 + 1)
