"""Score models against a real grade: one photograph graded both SDR and HDR by its author.

    nice -n 10 .venv/bin/python benchmarks/graded_pair.py [--model NAME|FILE.safetensors ...]
        [--data DIR] [--json]

The pair is libavif's Seine test image (``../shared/data/graded``, SOURCE.txt: BSD-2-Clause),
400x300, graded in Adobe Camera Raw:

- **SDR**: ``seine_sdr_gainmap_srgb.jpg``, the base JPEG only (its Ultra HDR / Adobe gain map, a
  second MPF picture, is ignored). 8-bit sRGB R'G'B' / 255. Assumption: the code values are
  handed to the models as didtv's decoder hands a BT.709 video's frames (BT.709 R'G'B' in [0, 1],
  which the models decode as BT.1886, V^2.4); the author's encoding is the sRGB curve, so the
  darkest tones are a little darker as a model reads them than on the author's screen.
- **HDR truth**: ``seine_hdr_srgb_PQ16.png``: the BT.709-primaries PQ AVIF (cicp 1/16/6) decoded
  to 16-bit R'G'B' (no colour chunks in the PNG; SOURCE.txt says what it is). Code / 65535 ->
  PQ EOTF (cd/m2) -> BT.709 -> BT.2020 on linear light -> PQ: BT.2020 PQ R'G'B' in [0, 1], the
  models' output space.

Both are centre-cropped to a multiple of 8 (400x296) and checked to be aligned. Each model runs
through ``Runner`` on a still clip of 7 identical frames (as ``convert`` treats a still image),
on the CPU in fp32; its centre output, clipped to [0, 1], is scored with docs/evaluation.md's
conventions: PQ-PSNR, ΔE_ITP, and the mean PQ level against the truth's (too bright / too dark).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from didtv.color.gamut import BT709_TO_BT2020, apply_matrix
from didtv.color.transfer import pq_eotf, pq_inverse_eotf
from didtv.metrics.basic import delta_e_itp, psnr

GRADED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "graded"
SDR_FILE, HDR_FILE = "seine_sdr_gainmap_srgb.jpg", "seine_hdr_srgb_PQ16.png"
DEFAULT_MODELS = ("bt2408", "bt2446a", "tiny", "lite")
STILL_FRAMES = 7
MULTIPLE = 8


def load_sdr(path: Path) -> np.ndarray:
    """The JPEG's primary picture (not its gain map) -> float32 ``(3, h, w)`` R'G'B' in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        im.seek(0)  # an MPO reader would expose the gain map as frame 1
        rgb = np.asarray(im.convert("RGB"), np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def load_hdr_truth(path: Path) -> np.ndarray:
    """16-bit PQ BT.709 PNG -> float32 ``(3, h, w)`` PQ BT.2020 R'G'B' in [0, 1]."""
    import cv2  # Pillow reads 16-bit RGB PNGs as 8-bit

    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint16 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"{path}: expected a 16-bit RGB PNG")
    light709 = pq_eotf(bgr[..., ::-1].astype(np.float64) / 65535.0)  # cd/m2, channel-last
    pq2020 = pq_inverse_eotf(apply_matrix(light709, BT709_TO_BT2020))
    return np.ascontiguousarray(pq2020.transpose(2, 0, 1), np.float32)


def centre_crop(x: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    return np.ascontiguousarray(x[:, top:top + h, left:left + w])


def best_shift(a: np.ndarray, b: np.ndarray, reach: int = 3) -> tuple[int, int]:
    """The shift of ``b`` (within +-reach pixels) whose detail correlates best with ``a``'s.
    Detail: the luma minus its 5x5 box mean, so a different tone curve matters little."""
    def detail(x):
        y = 0.2627 * x[0] + 0.678 * x[1] + 0.0593 * x[2]
        k = np.ones(5) / 5
        blur = np.apply_along_axis(np.convolve, 0, np.apply_along_axis(np.convolve, 1, y, k, "same"), k, "same")
        return (y - blur)[8:-8, 8:-8]
    da, db = detail(a), detail(b)
    core = da[reach:-reach, reach:-reach]
    scores = {}
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            c = db[reach + dy:db.shape[0] - reach + dy, reach + dx:db.shape[1] - reach + dx]
            scores[(dy, dx)] = float(np.corrcoef(core.ravel(), c.ravel())[0, 1])
    return max(scores, key=scores.get)


def load_pair(data_dir: Path = GRADED) -> tuple[np.ndarray, np.ndarray]:
    """``(sdr, truth)``: aligned float32 ``(3, h, w)`` frames, h and w multiples of 8."""
    sdr, truth = load_sdr(data_dir / SDR_FILE), load_hdr_truth(data_dir / HDR_FILE)
    if sdr.shape != truth.shape:
        raise ValueError(f"SDR {sdr.shape[1:]} and HDR {truth.shape[1:]} differ in size: not a pair")
    h, w = sdr.shape[1] // MULTIPLE * MULTIPLE, sdr.shape[2] // MULTIPLE * MULTIPLE
    sdr, truth = centre_crop(sdr, h, w), centre_crop(truth, h, w)
    shift = best_shift(sdr, truth)
    if shift != (0, 0):
        raise ValueError(f"SDR and HDR are not aligned: detail matches best at a shift of {shift}")
    return sdr, truth


def run_still(model, sdr: np.ndarray, frames: int = STILL_FRAMES) -> np.ndarray:
    """The centre output of ``frames`` identical frames through ``Runner`` (cpu, fp32), clipped."""
    from didtv.pipeline.runner import Runner

    runner = Runner(model, device="cpu", precision="fp32")
    outs = list(runner.process(sdr.copy() for _ in range(frames)))
    return np.clip(outs[frames // 2], 0.0, 1.0)


def scores(out: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"psnr_db": psnr(out, truth), "delta_e_itp": delta_e_itp(out, truth),
            "mean_pq": float(out.mean()), "mean_pq_diff_codes": float((out.mean() - truth.mean()) * 1023)}


def evaluate(names: list[str], sdr: np.ndarray, truth: np.ndarray) -> tuple[dict, dict]:
    """``(results, skipped)``: scores and seconds per model; why each skipped model was skipped."""
    from didtv.errors import ModelError
    from didtv.models.registry import load_model

    results, skipped = {}, {}
    for name in names:
        try:
            model = load_model(name, device="cpu")
        except ModelError as exc:
            skipped[name] = str(exc)
            continue
        t0 = time.perf_counter()
        out = run_still(model, sdr)
        results[name] = {**scores(out, truth), "seconds": round(time.perf_counter() - t0, 2)}
    return results, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="registered name or .safetensors (repeatable); "
                    f"default: {' '.join(DEFAULT_MODELS)}")
    ap.add_argument("--data", type=Path, default=GRADED, help="the graded folder (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args(argv)
    if not (args.data / SDR_FILE).is_file():
        print(f"no graded pair in {args.data} (../shared/data/graded)", file=sys.stderr)
        return 2
    sdr, truth = load_pair(args.data)
    results, skipped = evaluate(args.model or list(DEFAULT_MODELS), sdr, truth)
    truth_info = {"size": list(truth.shape[1:]), "mean_pq": float(truth.mean()),
                  "peak_cd_m2": float(pq_eotf(truth.astype(np.float64)).max())}
    if args.json:
        print(json.dumps({"truth": truth_info, "models": results, "skipped": skipped}, indent=2))
        return 0
    h, w = truth_info["size"]
    print(f"Seine pair {w}x{h}: truth mean PQ {truth_info['mean_pq']:.4f}, "
          f"peak {truth_info['peak_cd_m2']:.0f} cd/m2\n")
    print("| model | PQ-PSNR (dB) | ΔE_ITP | mean PQ | mean - truth (10-bit codes) | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['psnr_db']:.2f} | {r['delta_e_itp']:.2f} | {r['mean_pq']:.4f} "
              f"| {r['mean_pq_diff_codes']:+.1f} | {r['seconds']:.1f} |")
    for name, why in skipped.items():
        print(f"\nskipped {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
