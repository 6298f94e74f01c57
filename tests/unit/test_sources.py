"""HDR sources other than OpenEXR: Radiance RGBE (.hdr) and display-referred 16-bit PQ/HLG PNG/TIFF."""

from __future__ import annotations

import json
from pathlib import Path

import colour
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from clips import requires_ffmpeg  # noqa: E402

from didtv.color.gamut import BT709_TO_BT2020, apply_matrix  # noqa: E402
from didtv.data.sources import find_sources, read_source  # noqa: E402


def _scene(h=40, w=64):
    rng = np.random.default_rng(0)
    ramp = np.geomspace(0.002, 40.0, w)[None, :, None]
    return (ramp * rng.uniform(0.5, 1.0, (h, 1, 3))).astype(np.float32)


def _write_signal_png(path, signal_rgb):
    codes = np.rint(np.clip(signal_rgb, 0, 1) * 65535).astype(np.uint16)
    assert cv2.imwrite(str(path), codes[..., ::-1])


def test_radiance_hdr_round_trip(tmp_path):
    scene = _scene()
    path = tmp_path / "scene.hdr"
    assert cv2.imwrite(str(path), scene[..., ::-1])
    src = read_source(path)
    assert not src.display_referred and src.light.shape == scene.shape
    # RGBE keeps 8 mantissa bits of the largest channel of each pixel.
    err = np.abs(src.light - scene) / scene.max(axis=-1, keepdims=True)
    assert err.max() < 1 / 128


def test_pq_png_is_read_as_display_light(tmp_path):
    # Reference values from colour-science: grey at 203 cd/m2 and a BT.709 red at 100 cd/m2.
    light709 = np.zeros((8, 8, 3))
    light709[:4] = 203.0
    light709[4:] = [100.0, 0.0, 0.0]
    signal = colour.models.eotf_inverse_ST2084(apply_matrix(light709, BT709_TO_BT2020))
    _write_signal_png(tmp_path / "pq.png", signal)
    src = read_source(tmp_path / "pq.png", "pq")
    assert src.display_referred
    np.testing.assert_allclose(src.light, light709, rtol=2e-3, atol=0.02)


def test_hlg_75_percent_is_reference_white_on_a_1000_nit_display(tmp_path):
    # BT.2408: HLG signal 0.75 is reference white, 203 cd/m2 on a 1000 cd/m2 display (OOTF gamma 1.2).
    _write_signal_png(tmp_path / "hlg.tif", np.full((4, 4, 3), 0.75))
    src = read_source(tmp_path / "hlg.tif", "hlg")
    np.testing.assert_allclose(src.light, 203.0, rtol=5e-3)


def test_wide_gamut_green_is_clipped_to_bt709(tmp_path):
    signal = np.zeros((4, 4, 3))
    signal[..., 1] = colour.models.eotf_inverse_ST2084(200.0)  # pure BT.2020 green: outside BT.709
    _write_signal_png(tmp_path / "green.png", signal)
    light = read_source(tmp_path / "green.png").light
    assert light.min() >= 0 and light[..., 1].max() > 200


def test_8bit_png_is_refused_with_the_reason(tmp_path):
    cv2.imwrite(str(tmp_path / "sdr.png"), np.full((4, 4, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="16 bits per sample"):
        read_source(tmp_path / "sdr.png")
    with pytest.raises(ValueError, match="unsupported HDR source"):
        find_sources([tmp_path / "notes.txt"])


def test_find_sources_lists_every_format(tmp_path):
    for name in ("a.exr", "b.hdr", "c.png", "d.tiff", "e.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_sources([tmp_path])] == ["a.exr", "b.hdr", "c.png", "d.tiff"]


@requires_ffmpeg
def test_build_from_rgbe_and_pq_sources_keeps_a_graded_source_level(tmp_path):
    from didtv.color.transfer import pq_eotf
    from didtv.data.build import build

    assert cv2.imwrite(str(tmp_path / "scene.hdr"), _scene(64, 64)[..., ::-1])
    # A flat 100 cd/m2 grey master: a display-referred source keeps its level (no re-exposure).
    _write_signal_png(tmp_path / "grey.png", np.full((64, 64, 3), colour.models.eotf_inverse_ST2084(100.0)))
    out = build([tmp_path / "scene.hdr", tmp_path / "grey.png"], tmp_path / "out", seed=1, clips_per_source=1,
                size=(32, 32), split="train", workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == 2 and manifest["transfer"] == "pq"
    grey = next(r for r in manifest["clips"] if r["file"].startswith("grey"))
    with np.load(out / grey["file"]) as z:
        nits = pq_eotf(z["hdr"] / 65535.0)
    np.testing.assert_allclose(nits, 100.0, rtol=0.01)


@requires_ffmpeg
def test_data_build_cli_takes_the_transfer(tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli

    _write_signal_png(tmp_path / "white.tif", np.full((48, 48, 3), 0.75))
    res = CliRunner().invoke(cli, ["data", "build", str(tmp_path / "white.tif"), "-o", str(tmp_path / "out"),
                                   "--clips-per-source", "1", "--size", "32", "--workers", "1", "--transfer", "hlg"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["transfer"] == "hlg"
    res = CliRunner().invoke(cli, ["data", "build", str(tmp_path / "white.tif"), "-o", str(tmp_path / "o2"),
                                   "--transfer", "srgb"])
    assert res.exit_code == 2


# -- HDR videos: real consecutive frames ---------------------------------------------------------

@pytest.fixture(scope="module")
def hdr10_video(tmp_path_factory):
    from clips import make_clip, skip_without_ffmpeg

    skip_without_ffmpeg()
    return make_clip(tmp_path_factory.mktemp("v") / "hdr10.mkv", kind="hdr10", size=(64, 48), frames=12)


def test_video_clips_are_real_consecutive_frames(hdr10_video):
    from didtv.color.transfer import pq_inverse_eotf
    from didtv.data.sources import roll_off_highlights, signal_to_light, video_clips
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe

    clips = video_clips(hdr10_video, np.random.default_rng(0), count=2, size=(32, 32))
    assert len(clips) == 2 and all(c.shape == (7, 32, 32, 3) for c in clips)
    assert all(c.min() >= 0 and c.max() <= 1000.5 for c in clips)
    # The whole picture at full size is the decoded frames themselves, as display light.
    [whole] = video_clips(hdr10_video, np.random.default_rng(1), count=1, size=None, max_width=64)
    assert np.abs(np.diff(pq_inverse_eotf(whole), axis=0)).max() > 0.05  # the pattern moves
    with FrameReader(probe(hdr10_video)) as reader:
        frames = [f.transpose(1, 2, 0).astype(np.float64) for f in reader]
    light = [signal_to_light(f, "pq") for f in frames]
    errors = [np.abs(whole - roll_off_highlights(np.stack(light[k:k + 7]))).max() for k in range(len(frames) - 6)]
    assert min(errors) < 0.1, errors  # cd/m2 (float32 at 1000): one window of the decode is this clip


def test_sdr_video_is_refused(tmp_path):
    from clips import make_clip, skip_without_ffmpeg

    from didtv.data.sources import video_clips

    skip_without_ffmpeg()
    sdr = make_clip(tmp_path / "sdr.mp4", kind="sdr", frames=8)
    with pytest.raises(ValueError, match="not an HDR video"):
        video_clips(sdr, np.random.default_rng(0), count=1, size=(32, 32))


@requires_ffmpeg
def test_build_from_a_video_train_and_val(hdr10_video, tmp_path):
    from didtv.data.build import build
    from didtv.data.degrade import OPERATORS, QPS

    train = build([hdr10_video], tmp_path / "train", seed=2, clips_per_source=2, size=(32, 32), workers=1)
    records = json.loads((train / "manifest.json").read_text())["clips"]
    assert [r["file"] for r in records] == ["hdr10-000.npz", "hdr10-001.npz"]
    val = build([hdr10_video], tmp_path / "val", seed=2, split="val", max_width=64, workers=1)
    records = json.loads((val / "manifest.json").read_text())["clips"]
    assert len(records) == len(OPERATORS) * len(QPS)
    with np.load(val / records[0]["file"]) as z:
        assert z["hdr"].shape == (7, 3, 48, 64) and z["lq"].shape == (7, 3, 48, 64)


# -- the real sources in ../shared/data (skipped in a clone without it) ----------------------------

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RGBE_SCENE = SHARED / "hdri" / "train-more" / "realism-effects" / "garden_nook_1k.hdr"  # 256x128, the smallest
HLG_VIDEO = SHARED / "hdr-video" / "hlg10-color-test.mp4"  # 9 frames, hand-held ColorChecker
PQ_VIDEO = SHARED / "hdr-video" / "hdr10-av1.mp4"  # AV1 PQ, 127 frames
DV_VIDEO = SHARED / "hdr-video" / "dolbyVision-hdr.MOV"  # 5 frames: shorter than one window
needs_shared = pytest.mark.skipif(not HLG_VIDEO.exists() or not RGBE_SCENE.exists(),
                                  reason="../shared/data is not present (a user's clone)")


@needs_shared
@requires_ffmpeg
def test_build_reads_a_real_radiance_scene_of_train_more(tmp_path):
    from didtv.color.transfer import pq_eotf
    from didtv.data.build import build

    out = build([RGBE_SCENE], tmp_path / "out", seed=0, clips_per_source=2, size=(32, 32), workers=1)
    records = json.loads((out / "manifest.json").read_text())["clips"]
    assert [r["file"] for r in records] == ["garden_nook_1k-000.npz", "garden_nook_1k-001.npz"]
    with np.load(out / records[0]["file"]) as z:
        nits = pq_eotf(z["hdr"] / 65535.0)
        assert z["lq"].shape == (7, 3, 32, 32)
    # Exposed like every scene-linear source: a log-average of 18 % of 203 cd/m2 within +-1 stop,
    # and the panorama's sun, rolled off, is still far above reference white.
    y = nits[0].transpose(1, 2, 0) @ np.array([0.2627, 0.6780, 0.0593])
    assert 5 < np.exp(np.log(np.maximum(y, 1e-3)).mean()) < 150 and y.max() <= 1000.5


@needs_shared
@requires_ffmpeg
def test_build_takes_a_real_hlg_video_and_skips_one_too_short_for_a_window(tmp_path):
    from didtv.data.build import build

    skipped = []
    out = build([HLG_VIDEO, DV_VIDEO], tmp_path / "out", seed=1, clips_per_source=2, size=(48, 48), workers=1,
                on_skip=lambda src, why: skipped.append(src.name))
    manifest = json.loads((out / "manifest.json").read_text())
    assert skipped == ["dolbyVision-hdr.MOV"] and manifest["skipped"][0]["reason"].startswith("5 frames")
    assert [r["file"] for r in manifest["clips"]] == ["hlg10-color-test-000.npz", "hlg10-color-test-001.npz"]
    diffs = []
    for r in manifest["clips"]:
        with np.load(out / r["file"]) as z:
            lq = z["lq"].astype(np.float64) / 65535
        # Real hand-held motion: the decoded SDR frames differ (a view of clipped wall may not).
        diffs.append(np.abs(np.diff(lq, axis=0)).mean())
    assert max(diffs) > 2e-3, diffs


@needs_shared
@requires_ffmpeg
def test_a_real_hdr10_video_gives_windows_of_display_light():
    from didtv.data.sources import LUMA_709, video_clips

    [clip] = video_clips(PQ_VIDEO, np.random.default_rng(0), count=1, size=(64, 64))
    y = clip @ LUMA_709
    assert clip.shape == (7, 64, 64, 3) and np.median(y) > 1.0 and y.max() <= 1000.5  # the grade kept, rolled off
    assert np.abs(np.diff(y, axis=0)).mean() > 0.1  # the video's own motion


# -- the exposure convention on the darkest and brightest scenes ----------------------------------

DARKEST = SHARED / "hdri" / "train" / "blender_studio.exr"  # lowest log-average of hdri/train (0.012)
BRIGHTEST = SHARED / "hdri" / "train" / "open3d" / "open3d_konzerthaus_py.exr"  # highest (1.40): a lit ceiling
SNOW = SHARED / "hdri" / "train-more" / "realism-effects" / "snowy_field_1k.hdr"  # high-key daylight


def _metered_views(path, views=6):
    from didtv.data.sources import LUMA_709, hdr_clip

    image = read_source(path).light
    panorama = abs(image.shape[1] / image.shape[0] - 2.0) < 0.05
    out = []
    for s in range(views):
        clip = hdr_clip(image, np.random.default_rng(s), size=(64, 64), panorama=panorama, key_range=(0.0, 0.0))
        out.append(clip[3] @ LUMA_709)  # the centre frame's luminance, cd/m2
    return out, image


@pytest.mark.skipif(not DARKEST.exists() or not SNOW.exists(), reason="../shared/data is not present")
def test_metering_pins_each_view_s_log_average_not_its_diffuse_white():
    """docs/training.md, "Exposure": every view's robust log-average is set to 18 % of 203 cd/m2,
    so the implied diffuse white is 203 cd/m2 whatever the scene's own level (7 stops apart
    here). Real white surfaces land there only in a view of average reflectance: a high-key view
    (a lit ceiling, snow) puts its brightest 1 % below 100 cd/m2, a low-key studio its lamps far
    above 203. This test pins that behaviour; a change of the convention must change it."""
    from didtv.color.transfer import REFERENCE_WHITE
    from didtv.data.sources import DEFAULT_KEY, LUMA_709

    p99 = {}
    levels = []
    for path in (DARKEST, BRIGHTEST, SNOW):
        views, image = _metered_views(path)
        levels.append(float(np.exp(np.log(np.maximum(image @ LUMA_709, 1e-6)).mean())))
        for y in views:
            lo, hi = np.percentile(y, [1, 99])
            log_avg = float(np.exp(np.log(np.clip(y, max(lo, 1e-6), hi)).mean()))
            # 36.5 cd/m2 = 0.18 x 203; the roll-off above ~390 cd/m2 (after metering) lowers it a little
            assert log_avg == pytest.approx(DEFAULT_KEY, rel=0.2)
        p99[path.stem] = float(np.median([np.percentile(y, 99) for y in views]))
    assert max(levels) / min(levels) > 50  # the files' own levels are far apart
    assert p99[DARKEST.stem] > REFERENCE_WHITE  # low key: lifted, its lights above reference white
    assert p99[BRIGHTEST.stem] < 100 and p99[SNOW.stem] < 100  # high key: white surfaces land ~1.5-2 stops low
