"""Motion guard: keep out of a window what the network cannot align.

DIDNet fuses seven frames through a deformable convolution whose offsets were learned on
synthetic camera motion of 0-5 px per frame. Where something moves faster (the bundled clip's
bus: ~19 px per frame) the neighbours are not aligned but blended in, and the output shows a dark
copy of the moving edge where it was a frame earlier (docs/model-card.md, "Ghosting on motion").
The shipped offsets do not follow that motion at all (they saturate at the bound in a fixed
pattern), and neither a wider bound nor a fine-tune on moving objects cured it
(docs/training.md), while the same networks on a still window (the centre frame seven times)
show no ghost. So before the network, every neighbour pixel that has no counterpart within reach
is replaced by the centre frame's pixel::

    reach_k   = radius * |k - centre|   pixels, for the neighbour k frames away
    hi, lo    = max and min of neighbour k over a (2 reach_k + 1)^2 square around each pixel
    excess    = how far the centre's value lies outside [lo, hi], largest over R'G'B'
    m         = clamp((excess - tol) / tol, 0, 1), dilated by 2 px and feathered over 5 px
    neighbour = lerp(neighbour, centre, m)

The range test is permissive on purpose: in texture the local range is wide and nothing is
replaced (the network's own alignment keeps working there); it fires where a flat area of the
centre frame faces a region of a different level in the neighbour, i.e. an occlusion or a motion
beyond the reach, which is exactly where ghosts form. A pixel that is replaced reads the centre
frame, which the network handles like a still window. The masks are computed at half resolution;
cost on a 2-core CPU: 60-80 ms per 960x544 window (docs/benchmarks.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Reach per frame of temporal distance, in pixels: the camera motion the training data holds
#: (0-5 px per frame), short of which the network aligns by itself.
GUARD_RADIUS = 4
#: Level difference (R'G'B', 0-1) that still counts as a match: the codec noise of 8-bit SDR at
#: QP 42 stays within a few codes; 6 codes of 255 are clear of it.
GUARD_TOL = 6 / 255


def _running_max(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Max over ``[i - radius, i + radius]`` along ``dim`` (outside the frame counts as -inf),
    by doubling: ``log2(2 radius + 1)`` elementwise maxima instead of one pass per tap, 10-25x
    faster than ``max_pool2d`` on CPU for these widths."""
    size, n = 2 * radius + 1, x.shape[dim]
    pad = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [radius, radius]
    m = F.pad(x, pad, value=float("-inf"))
    p = 1
    while 2 * p <= size:  # m[i] = max of p consecutive values from i
        m = torch.maximum(m.narrow(dim, 0, m.shape[dim] - p), m.narrow(dim, p, m.shape[dim] - p))
        p *= 2
    return torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, size - p, n))


def _max_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Max over a ``(2 radius + 1)^2`` square, separably (rows, then columns); same size."""
    if radius <= 0:
        return x
    return _running_max(_running_max(x, radius, -1), radius, -2)


def _running_mean(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Mean over ``[i - radius, i + radius]`` along ``dim``, of the values inside the frame
    (``avg_pool`` with ``count_include_pad=False``), as ``2 radius`` shifted adds: 3-5x faster
    than ``avg_pool2d`` on CPU for these small widths."""
    n = x.shape[dim]
    pad = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [radius, radius]
    padded = F.pad(x, pad)
    total = padded.narrow(dim, 0, n).clone()
    for d in range(1, 2 * radius + 1):
        total += padded.narrow(dim, d, n)
    i = torch.arange(n, device=x.device)
    count = (torch.clamp(i + radius, max=n - 1) - torch.clamp(i - radius, min=0) + 1).to(x.dtype)
    return total / count.view([n] + [1] * (x.dim() - 1 - dim % x.dim()))


def _box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    return _running_mean(_running_mean(x, radius, -1), radius, -2)


def _half_mean(x: torch.Tensor) -> torch.Tensor:
    """``(n, c, h, w)`` -> the means of its 2x2 blocks, ``ceil(h / 2) x ceil(w / 2)``: an odd
    last row or column averages the pixels it has (``avg_pool2d(x, 2, ceil_mode=True)``), by
    strided adds (3x faster on CPU)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:  # a replicated edge averages to the mean of the pixels there
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    pairs = x.unflatten(-2, (-1, 2))  # (..., h / 2, 2, w): two whole rows side by side
    rows = pairs[..., 0, :] + pairs[..., 1, :]
    return torch.add(rows[..., 0::2], rows[..., 1::2]).mul_(0.25)


def unreachable_mask(centre: torch.Tensor, neighbour: torch.Tensor, reach: int,
                     tol: float = GUARD_TOL, feather: int = 2) -> torch.Tensor:
    """``(b, c, h, w)`` centre and neighbour -> ``(b, 1, h, w)`` in [0, 1]: 1 where the centre's
    pixel has no counterpart in the neighbour within ``reach`` pixels, dilated by ``feather``
    pixels and feathered over as many (see the module doc)."""
    c, n = centre.float(), neighbour.float()
    hi = _max_filter(n, reach)
    lo = -_max_filter(-n, reach)
    excess = (F.relu(c - hi) + F.relu(lo - c)).amax(1, keepdim=True)
    m = ((excess - tol) / tol).clamp_(0.0, 1.0)
    return _box_blur(_max_filter(m, feather), feather)


def motion_guard(x: torch.Tensor, *, radius: int = GUARD_RADIUS, tol: float = GUARD_TOL,
                 inplace: bool = False) -> torch.Tensor:
    """A window batch ``(b, t, c, h, w)`` -> the same with every neighbour's unreachable pixels
    replaced by the centre frame's (:func:`unreachable_mask`); the centre frame is untouched.

    The masks are computed at half resolution (2x2 means, half the reach, 1 px of feather) and
    upsampled: they only mark regions wider than the reach, and this is 3x cheaper. One neighbour
    at a time, so the extra memory is a few frames, not a window; ``inplace`` writes into ``x``
    (a 4K float32 window is 0.7 GB) instead of a copy."""
    b, t, c, h, w = x.shape
    r = t // 2
    small = _half_mean(x.reshape(b * t, c, h, w).float())
    small = small.reshape(b, t, c, *small.shape[-2:])
    centre = x[:, r].float()
    out = x if inplace else x.clone()
    for k in range(t):
        if k == r:
            continue
        reach = (radius * abs(k - r) + 1) // 2
        m = unreachable_mask(small[:, r], small[:, k], reach, tol, feather=1)
        up = _upsampled(m, h, w)
        if up is None:  # nothing to replace in this neighbour
            continue
        rows, cols, m = up
        part = (slice(None), k, slice(None), rows, cols)
        if out.dtype == torch.float32:
            out[part].lerp_(centre[..., rows, cols], m)
        else:
            out[part] = torch.lerp(x[part].float(), centre[..., rows, cols], m).to(x.dtype)
    return out


def _upsampled(m: torch.Tensor, h: int, w: int) -> tuple[slice, slice, torch.Tensor] | None:
    """The half-size mask ``m`` upsampled (bilinear) to ``h x w`` where it is not zero: (rows,
    columns, that part of the upsampled mask), or None where it is zero everywhere. Even sizes
    upsample only :func:`_support`'s rectangle (exactly 2x: the same weights as the whole mask);
    odd sizes the whole mask."""
    if h % 2 or w % 2:
        return slice(0, h), slice(0, w), F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    box = _support(m)
    if box is None:
        return None
    s0, s1, t0, t1 = box
    up = F.interpolate(m[..., s0:s1, t0:t1], scale_factor=2, mode="bilinear", align_corners=False)
    return slice(2 * s0, 2 * s1), slice(2 * t0, 2 * t1), up


def _support(m: torch.Tensor) -> tuple[int, int, int, int] | None:
    """Rows ``s0:s1`` and columns ``t0:t1`` of the half-size mask ``m`` outside which its 2x
    upsampling is zero, or None where ``m`` is zero everywhere. One zero row (column) is kept on
    each side where there is one, so the bilinear upsampling of the rectangle equals that of the
    whole mask on rows ``2 s0:2 s1`` (both read only zeros where the rectangle's edge clamps);
    moving edges cover a few percent of a frame, and the lerp then touches only that part."""
    box = []
    for dim in (-2, -1):
        other = [d for d in range(m.dim()) if d != m.dim() + dim]
        hit = torch.nonzero(m.amax(dim=other) > 0).flatten()
        if hit.numel() == 0:
            return None
        box += [max(int(hit[0]) - 1, 0), min(int(hit[-1]) + 2, m.shape[dim])]
    return tuple(box)
