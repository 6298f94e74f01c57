"""In-memory clip sets built by :mod:`didtv.data.build`, and deterministic random batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from didtv.data.build import load_manifest


class ClipSet:
    """All clips of a data folder (or of several, in the order given), kept as uint16/uint8
    arrays (about 1.9 MB per 192x192 clip). ``records``: a subset of one folder's manifest;
    ``exclude_families``: continuous operator families whose clips are left out."""

    def __init__(self, data_dir: str | Path | list[str | Path], *, limit: int | None = None,
                 records: list[dict] | None = None, exclude_families: list[str] | tuple = ()) -> None:
        dirs = [Path(d) for d in data_dir] if isinstance(data_dir, (list, tuple)) else [Path(data_dir)]
        if records is not None and len(dirs) != 1:
            raise ValueError("records select clips of one data folder")
        located = [(d, rec) for d in dirs for rec in (records if records is not None else load_manifest(d)["clips"])
                   if rec.get("family") not in exclude_families]
        if limit:
            located = located[:limit]
        self.records = [rec for _, rec in located]
        self.lq, self.sdr, self.hdr = [], [], []
        for d, rec in located:
            with np.load(d / rec["file"]) as z:
                self.lq.append(z["lq"])
                self.sdr.append(z["sdr"])
                self.hdr.append(z["hdr"])
        if not self.records:
            raise ValueError(f"{', '.join(map(str, dirs))}: no clips")

    def __len__(self) -> int:
        return len(self.records)

    def item(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whole clip ``i``: lq (7, 3, h, w), clean SDR centre (3, h, w), HDR (T, 3, h, w); floats."""
        return (torch.from_numpy(self.lq[i].astype(np.float32) / 65535.0),
                torch.from_numpy(self.sdr[i].astype(np.float32) / 255.0),
                torch.from_numpy(self.hdr[i].astype(np.float32) / 65535.0))

    def batch(self, rng: np.random.Generator, batch_size: int, patch: int):
        """A random batch: crops of ``patch`` px (same crop for every frame and target), random
        horizontal/vertical flips; plus the whole views, for the condition network (which sees
        the full frame at inference).

        Returns lq (b, 7, 3, p, p), views (b, 7, 3, H, W), sdr (b, 3, p, p), hdr (b, 3, p, p).
        """
        idx = rng.integers(0, len(self), batch_size)
        crops, views, sdrs, hdrs = [], [], [], []
        for i in idx:
            lq, sdr, hdr = self.lq[i], self.sdr[i], self.hdr[i]
            h, w = lq.shape[-2:]
            y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
            flip_h, flip_v = bool(rng.integers(2)), bool(rng.integers(2))
            centre = hdr[len(hdr) // 2]

            def aug(a):
                if flip_h:
                    a = a[..., ::-1]
                if flip_v:
                    a = a[..., ::-1, :]
                return np.ascontiguousarray(a)

            crops.append(aug(lq[..., y:y + patch, x:x + patch]))
            views.append(aug(lq))
            sdrs.append(aug(sdr[:, y:y + patch, x:x + patch]))
            hdrs.append(aug(centre[:, y:y + patch, x:x + patch]))
        f = lambda arrs, s: torch.from_numpy(np.stack(arrs).astype(np.float32) / s)  # noqa: E731
        return f(crops, 65535.0), f(views, 65535.0), f(sdrs, 255.0), f(hdrs, 65535.0)
