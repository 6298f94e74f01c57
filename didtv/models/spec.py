"""What a model tells the runner about itself, so the runner never guesses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Capabilities of a loaded model.

    Every model maps a window of ``window`` SDR frames ``(b, window, 3, h, w)`` -- BT.709
    gamma-encoded R'G'B' in [0, 1] -- to the HDR centre frame ``(b, 3, h, w)``: BT.2020 R'G'B'
    PQ-encoded (SMPTE ST 2084) in [0, 1]. A model may return a tuple whose first item is that frame.

    Attributes:
        name: registry name (``bt2408``, ``tiny``, ...).
        window: number of frames per window (odd); 1 for frame-wise models.
        multiple_of: height and width must be multiples of this; the runner pads (replicate)
            and crops back.
        supports_half: whether bfloat16/float16 inference is allowed.
        tile: preferred tile edge in pixels for large frames, or ``None`` for "never tile".
        halo: pixels of context each tile gets on every side (a multiple of ``multiple_of``),
            so that tiled and whole-frame outputs agree (didtv.pipeline.runner.tile_boxes).
        learned: True when the model has trainable weights.
        description: one line for ``didtv models``.
        context: frames on each side of the centre the model reads at full size (None: all of
            the window); the runner's motion guard edits only those (a model may still look at
            thumbnails of the whole window, as DIDNet Lite's condition does).
        thumbnail: the edge of the per-frame thumbnails the model's global condition reads (None:
            it reads the window). A model that sets it has ``condition_thumbnails(frames)`` and
            ``condition_from_thumbnails(thumbs)``, and takes ``(b, 2 context + 1, 3, h, w)`` with
            a condition: the runner pools each frame once and stacks only those frames.
    """

    name: str
    window: int = 1
    multiple_of: int = 1
    supports_half: bool = False
    tile: int | None = None
    halo: int = 0
    learned: bool = False
    description: str = ""
    context: int | None = None
    thumbnail: int | None = None

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be odd and positive, got {self.window}")
        if self.multiple_of < 1:
            raise ValueError(f"multiple_of must be >= 1, got {self.multiple_of}")
        if self.context is not None and not 0 <= self.context <= self.window // 2:
            raise ValueError(f"context must be 0..{self.window // 2}, got {self.context}")
        if self.halo < 0 or self.halo % self.multiple_of:
            raise ValueError(f"halo must be a non-negative multiple of {self.multiple_of}, got {self.halo}")
