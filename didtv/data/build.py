"""``didtv data build``: HDR sources -> a deterministic set of (degraded SDR, clean SDR, HDR) clips.

Each clip is one ``.npz`` file (uncompressed, for fast loading)::

    lq   uint16 (7, 3, h, w)  decoded SDR after codec damage, R'G'B' * 65535 (BT.709)
    sdr  uint8  (3, h, w)     clean SDR centre frame (the auxiliary target), 8-bit R'G'B'
    hdr  uint16 (T, 3, h, w)  HDR target, BT.2020 PQ * 65535; T = 1 (centre) or 7 (``all_frames``)

and ``manifest.json`` lists every clip with how it was made. The same seed gives the same data.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from didtv.color.gamut import BT709_TO_BT2020, apply_matrix
from didtv.color.transfer import pq_inverse_eotf
from didtv.data.degrade import CODECS, OPERATORS, QPS, codec_damage, render_sdr
from didtv.data.families import FAMILIES, check_families, draw_params, render_family_sdr
from didtv.data.sources import (METERINGS, find_sources, hdr_clip, is_video, read_source, video_clips, video_frame_count,
                                whole_view_size)

FRAMES = 7  # frames per clip (the model's window)


@dataclass(frozen=True)
class ClipRecipe:
    file: str
    source: str
    operator: str
    codec: str
    qp: int
    exposure: float
    saturation: float
    seed: int
    moving_object: bool = False


def hdr_to_pq2020(nits: np.ndarray) -> np.ndarray:
    """``(..., 3)`` BT.709 light in cd/m2 -> BT.2020 PQ in [0, 1]."""
    return pq_inverse_eotf(np.clip(apply_matrix(nits, BT709_TO_BT2020), 0.0, None))


def _make_clip(args) -> dict:
    """One still source; ``size=None``: the whole picture, at most ``max_width`` wide (val)."""
    (src, out_dir, recipe_seed, size, renders, all_frames, transfer, max_width, moving_object, metering) = args
    rng = np.random.default_rng(recipe_seed)
    source = read_source(src, transfer)
    image = source.light
    whole = size is None
    if whole:
        size = whole_view_size(*image.shape[:2], max_width)
    panorama = abs(image.shape[1] / image.shape[0] - 2.0) < 0.05
    clip = hdr_clip(image, rng, size=size, panorama=panorama, whole=whole,
                    key_range=(-0.5, 0.5) if whole else (-1.0, 1.0), display_referred=source.display_referred,
                    moving_object=moving_object, metering=metering)
    return {"records": _write_renders(clip, renders, out_dir, all_frames, src, recipe_seed, moving_object)}


def _make_video_clips(args) -> dict:
    """One decode pass over a video for all its clips; ``renders``: one list per clip."""
    (src, out_dir, recipe_seed, size, renders_per_clip, all_frames, max_width) = args
    rng = np.random.default_rng(recipe_seed)
    clips = video_clips(src, rng, count=len(renders_per_clip), size=size, max_width=max_width)
    records = []
    for clip, renders in zip(clips, renders_per_clip):
        records += _write_renders(clip, renders, out_dir, all_frames, src, recipe_seed)
    return {"records": records}


def _run_job(job) -> dict:
    fn, args = job
    return fn(args)


def _write_renders(clip: np.ndarray, renders, out_dir, all_frames: bool, src, recipe_seed: int,
                   moving_object: bool = False) -> list[dict]:
    """HDR target + each (operator, codec, QP, grade) rendering of one clip -> .npz files."""
    pq = hdr_to_pq2020(clip).transpose(0, 3, 1, 2)  # (t, 3, h, w)
    hdr = pq if all_frames else pq[len(pq) // 2:len(pq) // 2 + 1]
    hdr16 = np.rint(np.clip(hdr, 0, 1) * 65535).astype(np.uint16)
    records = []
    for name, operator, codec, qp, exposure, saturation, params in renders:
        if params is None:
            sdr8 = render_sdr(clip, operator, exposure=exposure, saturation=saturation)  # (t, h, w, 3)
        else:
            sdr8 = render_family_sdr(clip, operator, params)
        lq = codec_damage(sdr8, codec=codec, qp=qp)
        np.savez(Path(out_dir) / name, lq=np.rint(lq * 65535).astype(np.uint16),
                 sdr=sdr8[len(sdr8) // 2].transpose(2, 0, 1).copy(), hdr=hdr16)
        records.append(asdict(ClipRecipe(name, str(src), operator, codec, qp, exposure, saturation, recipe_seed,
                                         moving_object)))
        if params is not None:
            records[-1].update(family=operator, params=params)
    return records


def build(sources: list[str | Path], out_dir: str | Path, *, seed: int = 0, clips_per_source: int = 8,
          size: tuple[int, int] = (192, 192), split: str = "train", workers: int = 2,
          max_width: int = 384, transfer: str = "pq", moving_objects: float = 0.0,
          families: list[str] | None = None, metering: str = "average", on_clip=None, on_skip=None) -> Path:
    """Build a data set. ``split="train"``: ``clips_per_source`` random views per source, each with
    a random operator, codec, QP, exposure and saturation. ``split="val"``: the whole image
    (downscaled to at most ``max_width``, sizes multiples of 8), every operator x every QP,
    x265, neutral grade, all 7 HDR frames stored (for temporal measures). PQ/HLG videos give
    ``clips_per_source`` windows of real consecutive frames (val: one, whole picture), decoded in
    one pass (:func:`didtv.data.sources.video_clips`). ``transfer``: how
    16-bit PNG/TIFF sources are encoded ("pq" or "hlg", BT.2020); other formats ignore it.
    ``moving_objects``: the share of still-source clips (train: per clip; val: per source) that
    get an object moving against the background (:func:`didtv.data.sources.add_moving_object`);
    decided from a stream of its own, so 0 builds exactly the set an older didtv built.
    A video shorter than one 7-frame window (an iPhone Dolby Vision sample has 5 frames) is
    skipped, not fatal: ``on_skip(path, reason)`` is told and the manifest lists it under
    ``skipped``; the other sources keep their seeds. Two sources with the same file stem are
    refused (their clips would overwrite each other).
    ``families``: render with these continuous operator families (:mod:`didtv.data.families`)
    instead of the six fixed operators: train clips draw a family uniformly, then its parameters
    from a stream of their own (no extra exposure or saturation grade: each family has its own);
    val sources get every listed family x every QP, the parameters drawn per (source, family), so
    a val set built with one family holds the same clips as that family's part of a fuller one.
    The manifest records ``family`` and the drawn ``params`` per clip. None: the fixed six.
    ``metering``: how scene-linear views are exposed (:func:`didtv.data.sources.expose`:
    "average", the default, or "highkey"); recorded in the manifest when not the default."""
    if metering not in METERINGS:
        raise ValueError(f"metering must be one of {', '.join(METERINGS)}, got {metering!r}")
    if not 0.0 <= moving_objects <= 1.0:
        raise ValueError(f"moving_objects must be a share in [0, 1], got {moving_objects}")
    if families is not None:
        families = check_families(families)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = find_sources(sources)
    if not files:
        raise ValueError("no HDR sources found")
    stems = [f.stem for f in files]
    if len(set(stems)) < len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"sources with the same file name stem would overwrite each other's clips: {', '.join(twice)}")
    jobs = []
    skipped: list[dict] = []
    for si, src in enumerate(files):
        stem = src.stem
        if is_video(src) and (frames := video_frame_count(src)) < FRAMES:
            skipped.append({"source": str(src), "reason": f"{frames} frames; a clip needs {FRAMES}"})
            if on_skip:
                on_skip(src, skipped[-1]["reason"])
            continue
        if split == "train":
            renders = []
            for ci in range(clips_per_source):
                ss = np.random.SeedSequence([seed, si, ci])
                rng = np.random.default_rng(ss)
                recipe_seed = int(ss.generate_state(1)[0])
                name, operator = f"{stem}-{ci:03d}.npz", str(rng.choice(families or OPERATORS))
                codec, qp = str(rng.choice(CODECS, p=[0.75, 0.25])), int(rng.choice(QPS))
                exposure, saturation = float(2.0 ** rng.uniform(-0.6, 0.4)), float(rng.uniform(0.85, 1.15))
                params = None
                if families:
                    exposure, saturation = 1.0, 1.0
                    params = draw_params(operator, _family_rng(seed, si, ci))
                renders.append((name, operator, codec, qp, exposure, saturation, params))
                if not is_video(src):
                    jobs.append((_make_clip, (src, out, recipe_seed, size, [renders[-1]], False, transfer, max_width,
                                              _moving_object(moving_objects, seed, si, ci), metering)))
            if is_video(src):
                video_seed = int(np.random.SeedSequence([seed, si]).generate_state(1)[0])
                jobs.append((_make_video_clips, (src, out, video_seed, size, [[r] for r in renders], False, max_width)))
        elif split == "val":
            recipe_seed = int(np.random.SeedSequence([seed, si]).generate_state(1)[0])
            if families:
                drawn = {f: draw_params(f, _family_rng(seed, si, list(FAMILIES).index(f))) for f in families}
                renders = [(f"{stem}-{f}-qp{qp}.npz", f, "x265", qp, 1.0, 1.0, drawn[f])
                           for f in families for qp in QPS]
            else:
                renders = [(f"{stem}-{op}-qp{qp}.npz", op, "x265", qp, 1.0, 1.0, None)
                           for op in OPERATORS for qp in QPS]
            if is_video(src):
                jobs.append((_make_video_clips, (src, out, recipe_seed, None, [renders], True, max_width)))
            else:
                jobs.append((_make_clip, (src, out, recipe_seed, None, renders, True, transfer, max_width,
                                          _moving_object(moving_objects, seed, si), metering)))
        else:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    records: list[dict] = []
    if workers <= 1:
        results = map(_run_job, jobs)
        pool = None
    else:
        # "spawn": forking a process that has already started torch's thread pools can deadlock.
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_run_job, jobs)
    try:
        for result in results:
            records += result["records"]
            if on_clip:
                on_clip(len(records))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    manifest = {"split": split, "seed": seed, "size": list(size), "transfer": transfer,
                "moving_objects": moving_objects,
                "sources": [str(f) for f in files],
                "operators": list(families or OPERATORS), "qps": list(QPS), "clips": records}
    if families:
        manifest["families"] = list(families)
    if metering != "average":
        manifest["metering"] = metering
    if skipped:
        manifest["skipped"] = skipped
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def _moving_object(share: float, *key: int) -> bool:
    """Whether one clip (or val source) gets a moving object; its own random stream per key."""
    return share > 0 and bool(np.random.default_rng(np.random.SeedSequence([*key, 0x0B1E])).random() < share)


def _family_rng(*key: int) -> np.random.Generator:
    """The stream a clip's (train) or a source's (val) family parameters are drawn from."""
    return np.random.default_rng(np.random.SeedSequence([*key, 0xFA3]))


def load_manifest(data_dir: str | Path) -> dict:
    return json.loads((Path(data_dir) / "manifest.json").read_text())
