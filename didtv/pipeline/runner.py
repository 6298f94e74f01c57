"""The inference stage: decoded frames in, HDR frames out, one output per input frame.

decode -> **window -> model** -> colour -> encode. The runner owns the frame buffer (sliding
windows, :mod:`didtv.pipeline.window`), moves windows to the model's device, pads them to the
model's size multiple and crops the result back.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from didtv.errors import ModelError, UsageError
from didtv.models.align import is_channels_last
from didtv.models.spec import ModelSpec
from didtv.pipeline.guard import motion_guard
from didtv.pipeline.shots import (CUT_THRESHOLD, ShotCondition, clamp_to_shot, is_cut, shot_indices,  # noqa: F401
                                  thumbnail, thumbnails)
from didtv.pipeline.window import sliding_windows

#: Runner's default for ``motion_guard`` (docs/model-card.md has the measurements).
MOTION_GUARD = True


def pick_device(requested: str | None = None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def stack_windows(windows: list[list[torch.Tensor]], multiple: int,
                  out: torch.Tensor | None = None) -> tuple[torch.Tensor, int, int]:
    """Windows of ``(c, h, w)`` frames -> ``(b, t, c, H, W)`` with ``H``, ``W`` the next multiples of
    ``multiple``, and ``h``, ``w``. One copy per frame into the top-left ``h x w`` of its slot; the
    margin is left unset, for :func:`replicate_margin` once the frames were edited in place (a
    separate replication pad copied the whole window again: ~20 ms per 960x540 window).
    ``out``: a previous result to fill again when its shape, dtype and device fit (a fresh
    buffer per window is a fresh mapping from the OS: its page faults cost more than the copy)."""
    first = windows[0][0]
    c, h, w = first.shape
    shape = (len(windows), len(windows[0]), c, h + (-h) % multiple, w + (-w) % multiple)
    if out is not None and tuple(out.shape) == shape and out.dtype == first.dtype and out.device == first.device:
        x = out
    else:
        x = torch.empty(shape, dtype=first.dtype, device=first.device)
    core = x[..., :h, :w]
    for i, window in enumerate(windows):
        for j, frame in enumerate(window):
            core[i, j].copy_(frame)
    return x, h, w


def replicate_margin(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Fill ``x``'s rows from ``h`` and columns from ``w`` on with copies of the last real row and
    column, in place: the same as a replication pad of ``x[..., :h, :w]``. Returns ``x``."""
    if x.shape[-2] > h:
        x[..., h:, :w] = x[..., h - 1:h, :w]
    if x.shape[-1] > w:
        x[..., w:] = x[..., w - 1:w]
    return x


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: the only CPUs where bfloat16 convolutions are fast (on AVX2-only
    CPUs like this project's CI machine they run 25-300x slower than float32, docs/benchmarks.md)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # pragma: no cover - older torch
        return False


def resolve_precision(requested: str | None, device: torch.device, spec: ModelSpec) -> str:
    """``auto|fp32|bf16|fp16`` -> the precision to run (``fp32``, ``bf16`` or ``fp16``).

    ``auto``: float32 for models that do not support half precision and on CPUs without native
    bfloat16; bfloat16 on CPUs with it; float16 on CUDA. Asking for a mode the device cannot run
    well raises :class:`~didtv.errors.UsageError` naming the reason (no silent fallback).
    """
    requested = requested or "auto"
    if requested not in PRECISIONS:
        raise UsageError(f"unknown precision {requested!r}; allowed: {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32"
    if requested == "auto":
        if not spec.supports_half:
            return "fp32"
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if not spec.supports_half:
        raise UsageError(f"model {spec.name} runs in float32 only (--precision {requested} is for DIDNet)")
    if device.type == "cpu":
        if requested == "fp16":
            raise UsageError("--precision fp16 needs a CUDA GPU", hint="on CPU use fp32 (or bf16 where the CPU has AVX512-BF16/AMX)")
        if not cpu_has_native_bf16():
            raise UsageError("this CPU has no native bfloat16 (AVX512-BF16/AMX): bf16 would run 25-300x "
                             "slower than fp32", hint="use --precision fp32 (the auto choice here)")
    return requested


class Runner:
    """Runs ``model`` over a stream of frames.

    Frames are float32 ``(3, h, w)`` BT.709 R'G'B' in [0, 1]; outputs are float32 ``(3, h, w)``
    PQ BT.2020 in [0, 1] (not yet clipped; the encoder clips).

    Args:
        device: ``None``/"auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        precision: ``auto|fp32|bf16|fp16`` (:func:`resolve_precision`); half precision runs the
            model under autocast, its outputs stay float32.
        batch: windows per forward pass (``None``: 1 on CPU, where batching gains nothing, and up
            to 8 Mpixel per batch on CUDA).
        tile: ``None``/"auto" (tile frames larger than :data:`AUTO_TILE_PIXELS`), ``0`` (never),
            or a tile edge in pixels (rounded to the model's size multiple). Tiles overlap by the
            model's ``spec.halo``; all tiles of a frame share one condition vector.
        motion_guard: replace the neighbour pixels that have no counterpart within reach by the
            centre frame's before the model sees the window (didtv.pipeline.guard): no ghosts of
            fast motion; the condition vector is computed from the guarded window too. Only for
            models with a window of more than one frame. ``None``: :data:`MOTION_GUARD`.
        torch_compile: run a learned model's forward pass through ``torch.compile`` (inductor,
            one graph per window shape; the first window pays the compilation, 20-40 s on 2 CPU
            cores, cached on disk after that). The deformable convolution stays eager (align.py).
            Whole frames only: tiled frames and analytic models run as they are. 1.4-2x faster on
            CPU (docs/benchmarks.md, "torch.compile"); off by default.
    """

    def __init__(self, model: torch.nn.Module, *, device: str | torch.device | None = None,
                 precision: str | None = None, batch: int | None = None,
                 tile: int | str | None = None, motion_guard: bool | None = None,
                 torch_compile: bool = False) -> None:
        self.spec: ModelSpec = model.spec
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        self.precision = resolve_precision(precision, self.device, self.spec)
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu" and hasattr(self.model, "use_channels_last"):
            self.model.use_channels_last()
        if batch is not None and int(batch) < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.batch = None if batch is None else int(batch)
        self.tile = parse_tile(tile)
        self.tiles_run = 0  # tiles computed so far (1 per window when untiled)
        guard = MOTION_GUARD if motion_guard is None else bool(motion_guard)
        self.motion_guard = guard and self.spec.window > 1
        compiled = bool(torch_compile) and self.spec.learned
        self._compiled = torch.compile(self.model, dynamic=False) if compiled else None
        self._stack: torch.Tensor | None = None  # the lean path's window buffer (stack_windows)

    @property
    def torch_compile(self) -> bool:
        """Whether the forward pass runs through torch.compile (learned models only)."""
        return self._compiled is not None

    # -- sizes ----------------------------------------------------------------------------------

    def batch_for(self, h: int, w: int) -> int:
        if self.batch is not None:
            return self.batch
        if self.device.type != "cuda":
            return 1
        return max(1, min(8, 8_000_000 // max(1, h * w)))

    def tile_for(self, h: int, w: int) -> int | None:
        """The tile edge used for an ``h x w`` (padded) frame, or None for the whole frame."""
        if self.spec.tile is None or self.tile == 0:
            return None
        m = self.spec.multiple_of
        if self.tile is None:  # auto
            if h * w <= AUTO_TILE_PIXELS:
                return None
            edge = AUTO_TILE_EDGE
        else:
            edge = self.tile
        edge = max(m, edge - edge % m)
        return None if edge >= h and edge >= w else edge

    # -- inference ------------------------------------------------------------------------------

    @property
    def lean(self) -> bool:
        """Whether the model takes only the frames it reads at full size (``spec.context`` on
        each side of the centre) and per-frame thumbnails for its condition (``spec.thumbnail``):
        each frame is then pooled once, not once per window, and a window copies 3 frames, not 7."""
        return self.spec.thumbnail is not None and self.spec.window > 1

    def frame_thumbnails(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A frame on the device -> its cut thumbnail and (lean models) its condition thumbnail."""
        cthumb = self.model.condition_thumbnails(frame[None])[0] if self.lean else None
        return thumbnails(frame[None])[0], cthumb

    @torch.inference_mode()
    def infer(self, window: list[np.ndarray], shot: "ShotCondition | None" = None) -> np.ndarray:
        """One window (``spec.window`` frames) -> the HDR centre frame.

        Stateless unless ``shot`` is given: then a model with a global condition
        (``condition_vector``) gets the running mean of its condition over the current shot.
        """
        frames = [torch.from_numpy(np.ascontiguousarray(f)).to(self.device) for f in window]
        return self.infer_batch([frames], shot)[0]

    @torch.inference_mode()
    def infer_batch(self, windows: list[list[torch.Tensor]], shot: "ShotCondition | None" = None,
                    thumbs: list[list[tuple[torch.Tensor, torch.Tensor | None]]] | None = None) -> list[np.ndarray]:
        """Several windows of frame tensors (already on ``self.device``) -> their HDR centre
        frames, in one forward pass per tile, with one device -> host copy for the batch.
        ``thumbs``: the frames' :meth:`frame_thumbnails`, when the caller keeps them from window to window
        (default: computed here)."""
        t = len(windows[0])
        r = t // 2
        if thumbs is None and (t > 1 or (shot is not None and hasattr(self.model, "condition_vector"))):
            thumbs = [[self.frame_thumbnails(f) for f in window] for window in windows]
        if t > 1:  # windows stopped at hard cuts: frames of another shot -> the shot's nearest frame
            idx = shot_indices(torch.stack([torch.stack([c for c, _ in tw]) for tw in thumbs]))
            if idx is not None:
                rows = idx.tolist()
                windows = [[w[j] for j in row] for w, row in zip(windows, rows)]
                thumbs = [[tw[j] for j in row] for tw, row in zip(thumbs, rows)]
        reach = r if self.spec.context is None else self.spec.context
        full = [w[r - reach:r + reach + 1] for w in windows] if self.lean else windows
        # (b, t, 3, H, W) padded to the model's multiple, in one copy per frame; the window is
        # edited on its h x w part, and the margin replicated after that. A lean model's stack
        # is reused from window to window (its outputs never alias it)
        x, h, w = stack_windows(full, self.spec.multiple_of, out=self._stack if self.lean else None)
        if self.lean:
            self._stack = x
        core = x[..., :h, :w]
        if self.motion_guard and reach > 0:  # only the frames the model reads at full size
            m = x.shape[1] // 2
            motion_guard(core[:, m - reach:m + reach + 1], inplace=True)  # x is this call's own stack
        replicate_margin(x, h, w)
        dtype = _DTYPES.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            cond = None
            if hasattr(self.model, "condition_vector"):
                if self.lean:
                    cond = self.model.condition_from_thumbnails(torch.stack([torch.stack([c for _, c in tw])
                                                                             for tw in thumbs]))
                else:
                    cond = self.model.condition_vector(x)
                if shot is not None:
                    cuts = [tw[r][0].float().cpu().numpy() for tw in thumbs]
                    cond = torch.cat([shot.update(cond[i:i + 1], cuts[i]) for i in range(len(windows))])
            edge = self.tile_for(*x.shape[-2:])
            if edge is None:
                y = self._forward(x, cond)
                self.tiles_run += 1
            elif hasattr(self.model, "features") and hasattr(self.model, "head"):
                y = self._two_pass_tiled(x, cond, edge)
            else:
                y = torch.empty((x.shape[0], 3, *x.shape[-2:]), dtype=torch.float32, device=x.device)
                for (iy, ix), (oy, ox), (cy, cx) in tile_boxes(*x.shape[-2:], edge, self.spec.halo):
                    y[..., oy, ox] = self._forward(x[..., iy, ix], cond)[..., cy, cx]
                    self.tiles_run += 1
        out = y[:, :, :h, :w].float().cpu().numpy()
        return list(out)

    def _two_pass_tiled(self, x: torch.Tensor, cond: torch.Tensor, edge: int) -> torch.Tensor:
        """DIDNet on tiles (see DIDNet.features/head): pass 1 computes the features of every
        tile with ``spec.halo`` of context into one frame-sized buffer and sums FFE's attention
        statistics over the tile cores; pass 2 runs the local head on tiles of that buffer with
        the whole frame's statistics. Only the features of one frame are held at once."""
        b, t, _, fh, fw = x.shape
        feat = None
        total, count = None, 0
        for (iy, ix), (oy, ox), (cy, cx) in tile_boxes(fh, fw, edge, self.spec.halo):
            core = self.model.features(x[..., iy, ix])[..., cy, cx]
            if feat is None:  # in the features' layout (channels-last on CPU): no transposing copies
                layout = torch.channels_last if is_channels_last(core) else torch.contiguous_format
                feat = torch.empty((b, core.shape[1], fh, fw), dtype=core.dtype, device=x.device,
                                   memory_format=layout)
            feat[..., oy, ox] = core
            moments = self.model.ffe_band_sum(core)
            if moments is not None:
                total = moments[0] if total is None else total + moments[0]
                count += moments[1]
            self.tiles_run += 1
        mean = None if total is None else total / count
        centre = x[:, t // 2]
        y = torch.empty((b, 3, fh, fw), dtype=torch.float32, device=x.device)
        # The head's widest reach is a 3x3 conv; one size multiple of context keeps FFE's 2x2
        # Haar blocks aligned and is exact.
        for (iy, ix), (oy, ox), (cy, cx) in tile_boxes(fh, fw, edge, self.spec.multiple_of):
            y[..., oy, ox] = self.model.head(feat[..., iy, ix], centre[..., iy, ix], cond, mean)[..., cy, cx]
        return y

    def _forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self._compiled is None:
            y = self.model(x) if cond is None else self.model(x, cond)
        else:
            from torch._dynamo.exc import TorchDynamoException

            try:
                y = self._compiled(x) if cond is None else self._compiled(x, cond)
            except TorchDynamoException as exc:  # compiling failed (e.g. no C++ compiler)
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise ModelError(f"torch.compile failed ({type(exc).__name__}: {first}); "
                                 "run without --compile") from None
        if isinstance(y, (tuple, list)):
            y = y[0]
        return y

    def process(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Every input frame -> one HDR frame; the global condition is held steady per shot.

        Each frame is copied to the device once; windows are stacked there. Consecutive windows
        are batched (:meth:`batch_for`); outputs come out in input order.
        """
        shot = ShotCondition()

        def uploaded():  # (device tensor, its thumbnails): each frame is pooled once, not per window
            for f in frames:
                t = torch.from_numpy(np.ascontiguousarray(f)).to(self.device, non_blocking=True)
                yield t, self.frame_thumbnails(t) if self.spec.window > 1 else None

        pending: list[list[tuple[torch.Tensor, tuple | None]]] = []

        def run() -> list[np.ndarray]:
            thumbs = [[s for _, s in w] for w in pending] if self.spec.window > 1 else None
            return self.infer_batch([[t for t, _ in w] for w in pending], shot, thumbs)

        for window in sliding_windows(uploaded(), self.spec.window):
            pending.append(window)
            if len(pending) >= self.batch_for(*window[0][0].shape[-2:]):
                yield from run()
                pending = []
        if pending:
            yield from run()


#: ``tile=auto`` leaves frames up to this many (padded) pixels whole: 1920x1088 fits in about
#: 3 GB with Tiny on CPU; larger frames are cut into tiles of AUTO_TILE_EDGE.
AUTO_TILE_PIXELS = 1920 * 1088
AUTO_TILE_EDGE = 1024


def parse_tile(tile: int | str | None) -> int | None:
    """``None``/"auto" -> None (auto), "off"/0 -> 0 (never), N -> N (> 0)."""
    if tile is None or tile == "auto":
        return None
    if tile in ("off", "none", 0, "0"):
        return 0
    try:
        edge = int(tile)
    except (TypeError, ValueError):
        raise ValueError(f"tile must be auto, off or a number of pixels, got {tile!r}") from None
    if edge < 0:
        raise ValueError(f"tile must be >= 0, got {edge}")
    return edge


def tile_boxes(h: int, w: int, edge: int, halo: int) -> list[tuple[tuple[slice, slice], tuple[slice, slice], tuple[slice, slice]]]:
    """Tiles covering an ``h x w`` frame: ``(input, output, crop)`` slice pairs (rows, columns).

    The frame is cut into cores of ``edge x edge`` (the last row/column smaller); each tile's
    input is its core grown by ``halo`` pixels on every side (clamped to the frame), the model
    runs on the input and ``crop`` takes the core back out of the model's output, which goes to
    ``output`` in the frame. With ``edge``, ``halo`` and the frame size multiples of the model's
    size multiple, every tile keeps the model's downsampling grid aligned with the whole frame's.
    """
    if edge <= 0:
        raise ValueError(f"tile edge must be > 0, got {edge}")
    boxes = []
    for y0 in range(0, h, edge):
        y1 = min(h, y0 + edge)
        iy0, iy1 = max(0, y0 - halo), min(h, y1 + halo)
        for x0 in range(0, w, edge):
            x1 = min(w, x0 + edge)
            ix0, ix1 = max(0, x0 - halo), min(w, x1 + halo)
            boxes.append(((slice(iy0, iy1), slice(ix0, ix1)),
                          (slice(y0, y1), slice(x0, x1)),
                          (slice(y0 - iy0, y1 - iy0), slice(x0 - ix0, x1 - ix0))))
    return boxes
