"""End-to-end conversion with real FFmpeg on tiny generated clips (CPU only)."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import numpy as np
import pytest

import colour

from clips import make_clip, make_patches_clip, patch_box, requires_ffmpeg
from didtv.api import convert
from didtv.color.transfer import pq_eotf
from didtv.errors import ModelError, OutputError, UnsupportedInputError
from didtv.io.decode import FrameReader
from didtv.io.ffmpeg import ffprobe_json, tool_path
from didtv.io.probe import HdrFormat, count_frames, probe
from didtv.presets import load_preset

pytestmark = requires_ffmpeg

PATCHES = [(255, 255, 255), (0, 0, 0), (128, 128, 128), (200, 30, 40), (20, 180, 60), (30, 40, 210),
           (250, 240, 20), (64, 200, 220), (235, 235, 235), (16, 16, 16), (90, 60, 30), (180, 120, 200)]


def _raw_yuv420p10(path, width, height) -> np.ndarray:
    """Decode the first frame as raw 10-bit codes (no colour conversion): (3 planes) list."""
    out = subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-"],
                         capture_output=True, check=True).stdout
    a = np.frombuffer(out, "<u2")
    y = a[: width * height].reshape(height, width)
    c = a[width * height:].reshape(2, height // 2, width // 2)
    return y, c[0], c[1]


def _reference_bt2408_codes(rgb8_codes) -> np.ndarray:
    """colour-science: 8-bit BT.709 limited Y'CbCr -> R'G'B' -> BT.2408 -> 10-bit BT.2020 codes."""
    ycc = np.asarray(rgb8_codes, dtype=np.float64)
    rgb = colour.YCbCr_to_RGB(ycc, K=colour.WEIGHTS_YCBCR["ITU-R BT.709"], in_bits=8, in_legal=True,
                              in_int=True, out_legal=False, out_int=False)
    lin = colour.models.eotf_BT1886(np.clip(rgb, 0, 1), L_B=0, L_W=1) * 203.0
    lin2020 = colour.RGB_to_RGB(lin, colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ITU-R BT.2020"])
    pq = colour.models.eotf_inverse_ST2084(np.clip(lin2020, 0, None))
    return colour.RGB_to_YCbCr(pq, K=colour.WEIGHTS_YCBCR["ITU-R BT.2020"], in_legal=False, in_int=False,
                               out_bits=10, out_legal=True, out_int=True)


def test_bt2408_lossless_matches_colour_science(tmp_path):
    src, codes = make_patches_clip(tmp_path / "patches.mkv", PATCHES, size=(64, 48), frames=3)
    dst = tmp_path / "out.mkv"
    res = convert(src, dst, preset=load_preset().with_overrides(model="bt2408", lossless=True), device="cpu")
    assert res.frames == 3
    y, cb, cr = _raw_yuv420p10(dst, 64, 48)
    ref = _reference_bt2408_codes(codes)
    worst = 0
    for k in range(len(PATCHES)):
        rows, cols = patch_box(k, (64, 48))
        # Centre of the patch (chroma at patch edges mixes neighbours in 4:2:0 only at borders).
        ry, cy = slice(rows.start + 4, rows.stop - 4), slice(cols.start + 4, cols.stop - 4)
        cry, ccy = slice(ry.start // 2, ry.stop // 2), slice(cy.start // 2, cy.stop // 2)
        got = np.array([np.median(y[ry, cy]), np.median(cb[cry, ccy]), np.median(cr[cry, ccy])])
        err = np.abs(got - ref[k]).max()
        worst = max(worst, err)
        assert err <= 2, f"patch {PATCHES[k]}: got {got}, colour-science says {ref[k]}"
    assert worst <= 2


def test_decode_roundtrip_is_exact_to_one_code(tmp_path):
    src, codes = make_patches_clip(tmp_path / "patches.mp4", PATCHES, size=(64, 48), frames=2)
    info = probe(src)
    with FrameReader(info) as reader:
        frames = list(reader)
    assert len(frames) == 2
    rgb = frames[0].transpose(1, 2, 0).astype(np.float64)  # (h, w, 3)
    # colour returns legal-range codes normalised by 2**8 - 1 when out_int=False.
    back = 255 * colour.RGB_to_YCbCr(rgb, K=colour.WEIGHTS_YCBCR["ITU-R BT.709"], out_bits=8, out_legal=True,
                                     out_int=False)
    for k, c in enumerate(codes):
        rows, cols = patch_box(k, (64, 48))
        # Away from patch borders, where chroma upsampling blends neighbouring patches.
        block = back[rows.start + 4:rows.stop - 4, cols.start + 4:cols.stop - 4].reshape(-1, 3)
        assert np.abs(block - np.array(c)).max() <= 1.0, f"patch {PATCHES[k]}"


def _side_data(stream: dict) -> dict[str, dict]:
    return {sd.get("side_data_type"): sd for sd in stream.get("side_data_list", [])}


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_metadata_streams_and_timing(tmp_path, suffix):
    src = make_clip(tmp_path / "in.mp4", kind="sdr", size=(64, 48), frames=12, fps="30000/1001",
                    audio=True, subtitles=True)
    dst = tmp_path / f"out{suffix}"
    res = convert(src, dst, model="bt2408", device="cpu")
    data = ffprobe_json(str(dst), "-show_streams", "-show_format")
    video = [s for s in data["streams"] if s["codec_type"] == "video"]
    assert len(video) == 1
    v = video[0]
    assert v["codec_name"] == "hevc" and v["profile"] == "Main 10" and v["pix_fmt"] == "yuv420p10le"
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == (
        "bt2020", "smpte2084", "bt2020nc", "tv")
    if suffix == ".mp4":
        assert v["codec_tag_string"] == "hvc1"
    sd = _side_data(v)
    assert "Mastering display metadata" in sd and "Content light level metadata" in sd
    assert int(sd["Content light level metadata"]["max_content"]) == res.light.max_cll
    assert int(sd["Content light level metadata"]["max_average"]) == res.light.max_fall
    mdm = sd["Mastering display metadata"]
    assert float(Fraction(mdm["max_luminance"])) == pytest.approx(1000.0)
    assert float(Fraction(mdm["red_x"])) == pytest.approx(0.680, abs=1e-4)
    # Audio and subtitles survive, with their languages.
    kinds = {s["codec_type"]: s for s in data["streams"]}
    assert kinds["audio"]["tags"].get("language") == "eng"
    assert kinds["subtitle"]["tags"].get("language") == "fra"
    assert kinds["subtitle"]["codec_name"] == ("mov_text" if suffix == ".mp4" else "subrip")
    # Frame count, frame rate and duration.
    assert count_frames(dst) == count_frames(src) == 12
    out_info, in_info = probe(dst), probe(src)
    assert out_info.fps == in_info.fps
    assert out_info.hdr == HdrFormat.HDR10
    assert abs(out_info.duration - in_info.duration) < 0.1


def test_maxcll_equals_value_from_written_frames(tmp_path):
    src, _ = make_patches_clip(tmp_path / "patches.mkv", PATCHES, size=(64, 48), frames=2)
    dst = tmp_path / "out.mkv"
    res = convert(src, dst, preset=load_preset().with_overrides(model="bt2446a", lossless=True), device="cpu")
    # Decode what was written back to PQ R'G'B' and measure it independently.
    out = subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(dst), "-vf",
                          "zscale=min=2020_ncl:rin=limited:m=2020_ncl:r=full,format=gbrpf32le",
                          "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    planes = np.frombuffer(out, "<f4").reshape(-1, 3, 48, 64).astype(np.float64)
    light = pq_eotf(np.clip(planes.max(axis=1), 0, 1))  # (frames, h, w) max(R,G,B) in cd/m2
    max_cll, max_fall = light.max(), light.mean(axis=(1, 2)).max()
    assert res.light.max_cll > 500  # bt2446a sends SDR white to 1000 cd/m2: a real test value
    assert abs(res.light.max_cll - max_cll) <= max(2.0, 0.01 * max_cll)
    assert abs(res.light.max_fall - max_fall) <= max(2.0, 0.01 * max_fall)
    sd = _side_data(ffprobe_json(str(dst), "-show_streams")["streams"][0])
    assert int(sd["Content light level metadata"]["max_content"]) == res.light.max_cll


def test_refuses_hdr_input(tmp_path):
    src = make_clip(tmp_path / "hdr.mkv", kind="hdr10", size=(64, 48), frames=3)
    with pytest.raises(UnsupportedInputError, match="already HDR10"):
        convert(src, tmp_path / "o.mkv", model="bt2408")
    assert not (tmp_path / "o.mkv").exists()


def test_ten_bit_sdr_input_is_accepted(tmp_path):
    src = make_clip(tmp_path / "sdr10.mkv", kind="sdr10", size=(64, 48), frames=4)
    res = convert(src, tmp_path / "o.mkv", model="bt2408")
    assert res.frames == 4


def test_existing_output_is_not_overwritten(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    dst = tmp_path / "out.mkv"
    dst.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists"):
        convert(src, dst, model="bt2408")
    assert dst.read_bytes() == b"precious"
    convert(src, dst, model="bt2408", overwrite=True)
    assert probe(dst).hdr == HdrFormat.HDR10


def test_output_equal_to_input_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mkv", size=(64, 48), frames=3)
    with pytest.raises(OutputError, match="is the input"):
        convert(src, src, model="bt2408", overwrite=True)


def test_missing_weights_fail_before_any_output(tmp_path, monkeypatch):
    from didtv.models import registry

    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "no-weights")  # a clone without weights
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    with pytest.raises(ModelError, match="no trained weights"):
        convert(src, tmp_path / "o.mkv", model="full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# An exception at any stage (model, encoder, after the frame loop): tests/io/test_shutdown.py.


def test_avi_with_empty_repeat_chunks_is_not_called_truncated(tmp_path):
    # AVI indexes count empty "repeat the previous frame" chunks: nb_frames (23 here) exceeds the
    # coded frames (9). Such a file is whole (../shared/data/sdr-video/tree.avi is one): convert
    # it, keeping its timing, instead of reporting truncation.
    src = tmp_path / "gaps.avi"
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=64x48:r=10:d=3,select='lt(mod(n\\,10)\\,3)'", "-fps_mode", "vfr",
                    "-c:v", "mpeg4", "-r", "10", str(src)], check=True)
    info = probe(src)
    assert info.frame_count is not None and info.frame_count > count_frames(src) == 9
    res = convert(src, tmp_path / "o.mkv", model="bt2408")
    assert res.frames == 9
    assert count_frames(tmp_path / "o.mkv") == 9
    assert abs(probe(tmp_path / "o.mkv").duration - info.duration) < 0.35


def test_output_is_clipped_at_the_mastering_peak(tmp_path, monkeypatch):
    """A model that writes light above the mastering display's peak (DIDNet's residual is not
    bounded) is clipped there: MaxCLL is the peak, not the model's 3,900 cd/m2."""
    from didtv.pipeline.runner import Runner

    def too_bright(self, windows, *args, **kwargs):
        h, w = windows[0][0].shape[-2:]
        return [np.full((3, h, w), 0.9, np.float32) for _ in windows]  # PQ 0.9 = 3,900 cd/m2

    monkeypatch.setattr(Runner, "infer_batch", too_bright)
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = convert(src, tmp_path / "o.mkv", model="bt2408", preset=load_preset().with_overrides(x265_preset="ultrafast"))
    assert res.mastering.max_luminance == 1000
    assert 980 <= res.light.max_cll <= 1010
    res4k = convert(src, tmp_path / "o4000.mkv", model="bt2408", preset="hdr10-4000")
    assert 3800 <= res4k.light.max_cll <= 4010  # a 4000-nit master keeps up to 4000
