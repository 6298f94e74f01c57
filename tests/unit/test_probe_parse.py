"""parse_probe and its helpers: pure functions on ffprobe JSON, no FFmpeg needed.

The property tests feed arbitrary and malformed JSON; parse_probe must return a VideoInfo or
raise ProbeError (with a one-line message), never a KeyError/TypeError/ValueError traceback.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from didtv.errors import ProbeError
from didtv.io.probe import (HdrFormat, VideoInfo, bit_depth_of, classify_hdr, parse_probe,
                            timestamps_irregular)

# ---------------------------------------------------------------------------------------------
# A realistic base: what ffprobe 5.1 prints for an HDR10 HEVC .mkv (trimmed).

VIDEO = {
    "index": 0, "codec_name": "hevc", "profile": "Main 10", "codec_type": "video", "width": 3840,
    "height": 2160, "pix_fmt": "yuv420p10le", "color_range": "tv", "color_space": "bt2020nc",
    "color_transfer": "smpte2084", "color_primaries": "bt2020", "chroma_location": "left",
    "field_order": "progressive", "r_frame_rate": "24000/1001", "avg_frame_rate": "24000/1001",
    "nb_frames": "240", "disposition": {"default": 1, "attached_pic": 0},
    "tags": {"DURATION": "00:00:10.010000000"},
}
AUDIO = {"index": 1, "codec_name": "eac3", "codec_type": "audio", "channels": 6,
         "r_frame_rate": "0/0", "avg_frame_rate": "0/0", "tags": {"language": "eng", "title": "Surround"}}
PGS = {"index": 2, "codec_name": "hdmv_pgs_subtitle", "codec_type": "subtitle", "tags": {"LANGUAGE": "fra"}}
FONT = {"index": 3, "codec_name": "ttf", "codec_type": "attachment", "tags": {"filename": "a.ttf"}}
FORMAT = {"format_name": "matroska,webm", "duration": "10.010000", "nb_streams": 4}
MASTERING = {
    "side_data_type": "Mastering display metadata", "red_x": "34000/50000", "red_y": "16000/50000",
    "green_x": "13250/50000", "green_y": "34500/50000", "blue_x": "7500/50000", "blue_y": "3000/50000",
    "white_point_x": "15635/50000", "white_point_y": "16450/50000", "min_luminance": "50/10000",
    "max_luminance": "40000000/10000",
}
CLL = {"side_data_type": "Content light level metadata", "max_content": 1200, "max_average": 300}
HDR10PLUS = {"side_data_type": "HDR Dynamic Metadata SMPTE2094-40 (HDR10+)", "application version": 1}
DOVI = {"side_data_type": "DOVI configuration record", "dv_version_major": 1, "dv_version_minor": 0,
        "dv_profile": 8, "dv_level": 6, "rpu_present_flag": 1, "el_present_flag": 0,
        "bl_present_flag": 1, "dv_bl_signal_compatibility_id": 1}


def fmt_json(*streams, fmt=FORMAT):
    return {"streams": [dict(s) for s in streams], "format": dict(fmt)}


def frames_json(*side_data):
    return {"frames": [{"side_data_list": [dict(sd) for sd in side_data]}]}


def test_realistic_hdr10():
    info = parse_probe("in.mkv", fmt_json(VIDEO, AUDIO, PGS, FONT), frames_json(MASTERING, CLL))
    assert info.hdr is HdrFormat.HDR10 and info.is_hdr
    assert info.fps == Fraction(24000, 1001) and info.avg_fps == Fraction(24000, 1001)
    assert info.bit_depth == 10 and info.frame_count == 240 and info.duration == pytest.approx(10.01)
    assert info.mastering_display.max_luminance == pytest.approx(4000.0)
    assert info.mastering_display.min_luminance == pytest.approx(0.005)
    assert info.mastering_display.red == pytest.approx((0.68, 0.32))
    assert (info.content_light.max_cll, info.content_light.max_fall) == (1200, 300)
    assert [(a.language, a.title, a.channels) for a in info.audio] == [("eng", "Surround", 6)]
    assert [(s.codec, s.language, s.bitmap) for s in info.subtitles] == [("hdmv_pgs_subtitle", "fra", True)]
    assert [(o.kind, o.codec) for o in info.other] == [("attachment", "ttf")]
    data = info.to_json()
    assert data["video"]["fps"] == "24000/1001" and data["video"]["fps_float"] == pytest.approx(23.976, abs=1e-3)
    json.dumps(data, allow_nan=False)


def test_static_metadata_in_the_container_counts():
    video = dict(VIDEO, side_data_list=[MASTERING, CLL])
    assert parse_probe("x", fmt_json(video), {}).hdr is HdrFormat.HDR10


@pytest.mark.parametrize("stream_sd, frame_sd, transfer, expect", [
    ([DOVI], [MASTERING, CLL, HDR10PLUS], "smpte2084", HdrFormat.DOLBY_VISION),
    ([], [MASTERING, CLL, HDR10PLUS], "smpte2084", HdrFormat.HDR10PLUS),
    ([], [MASTERING], "smpte2084", HdrFormat.HDR10),
    ([], [CLL], "smpte2084", HdrFormat.HDR10),
    ([], [], "smpte2084", HdrFormat.PQ10),
    ([], [], "arib-std-b67", HdrFormat.HLG),
    ([], [MASTERING], "bt709", HdrFormat.SDR),
    ([], [], None, HdrFormat.SDR),
    ([DOVI], [], "bt709", HdrFormat.DOLBY_VISION),  # profile 8.4 / 5 style: DV whatever the tag
])
def test_classification_precedence(stream_sd, frame_sd, transfer, expect):
    video = dict(VIDEO, side_data_list=stream_sd)
    if transfer is None:
        video.pop("color_transfer")
    else:
        video["color_transfer"] = transfer
    info = parse_probe("x", fmt_json(video), frames_json(*frame_sd))
    assert info.hdr is expect
    assert info.hdr10plus == (HDR10PLUS in frame_sd)


def test_dolby_vision_record():
    info = parse_probe("x", fmt_json(dict(VIDEO, side_data_list=[DOVI])), {})
    assert info.dolby_vision == {"profile": 8, "level": 6, "rpu_present": True, "el_present": False,
                                 "bl_present": True, "compatibility_id": 1, "version": "1.0"}
    assert info.to_json()["hdr"]["dolby_vision"]["profile"] == 8


def test_hdr_format_values():
    assert [f.value for f in HdrFormat] == ["SDR", "HDR10", "PQ10", "HLG", "HDR10+", "Dolby Vision"]
    assert f"{HdrFormat.HDR10PLUS}" == "HDR10+"
    assert classify_hdr("smpte2084", dolby_vision=False, hdr10plus=False, static_metadata=True) is HdrFormat.HDR10


@pytest.mark.parametrize("ffprobe_rotation, clockwise, display", [
    (0, 0, (3840, 2160)), (90, 270, (2160, 3840)), (-90, 90, (2160, 3840)), (180, 180, (3840, 2160)),
    (-180, 180, (3840, 2160)), (270, 90, (2160, 3840)), ("-90", 90, (2160, 3840)), (89.6, 270, (2160, 3840)),
    ("garbage", 0, (3840, 2160)),
])
def test_rotation_mapping(ffprobe_rotation, clockwise, display):
    """ffprobe prints the display matrix's counter-clockwise angle; ffmpeg rotates by its
    negation (clockwise). Measured: a display matrix printed as rotation 90 decodes turned 90
    degrees counter-clockwise, i.e. 270 clockwise."""
    video = dict(VIDEO, side_data_list=[{"side_data_type": "Display Matrix", "displaymatrix": "...",
                                         "rotation": ffprobe_rotation}])
    info = parse_probe("x", fmt_json(video), {})
    assert info.rotation == clockwise
    assert (info.display_width, info.display_height) == display
    assert (info.width, info.height) == (3840, 2160)


@pytest.mark.parametrize("pix_fmt, depth", [
    ("yuv420p", 8), ("yuvj420p", 8), ("nv12", 8), ("rgb24", 8), ("gray", 8), ("pal8", 8),
    ("yuv420p10le", 10), ("yuv422p10be", 10), ("p010le", 10), ("nv20le", 10), ("x2rgb10le", 10),
    ("y210le", 10), ("gray10le", 10), ("yuv444p12le", 12), ("gbrp12le", 12), ("xyz12le", 12),
    ("yuv420p16le", 16), ("p016le", 16), ("rgb48le", 16), ("rgba64be", 16), ("ya16le", 16),
    ("gbrpf32le", 32), ("grayf32le", 32), ("yuva444p9le", 9), ("gray14le", 14),
])
def test_bit_depth_from_pix_fmt(pix_fmt, depth):
    assert bit_depth_of(pix_fmt) == depth


@pytest.mark.parametrize("r, avg, field_order, variable", [
    ("25/1", "25/1", "progressive", False),
    ("30000/1001", "30000/1001", "progressive", False),
    ("30/1", "30000/1001", "progressive", False),  # 0.1 %: rounding, not VFR
    ("30/1", "2997/125", "progressive", True),  # 20 % apart
    ("50/1", "25/1", "tt", False),  # interlaced: r_frame_rate is the field rate
    ("50/1", "25/1", "progressive", True),
    ("25/1", "0/0", "progressive", False),  # no average: cannot tell from the header
])
def test_vfr_from_header_rates(r, avg, field_order, variable):
    video = dict(VIDEO, r_frame_rate=r, avg_frame_rate=avg, field_order=field_order)
    info = parse_probe("x", fmt_json(video), {})
    assert info.variable_fps is variable
    assert info.interlaced is (field_order == "tt")


def test_vfr_from_packet_timestamps():
    def packets(pts, index=0):
        return [{"stream_index": index, "pts": p} for p in pts]

    cfr_ms = [round(i * 1001 / 30) for i in range(60)]  # 30000/1001 in a 1 ms base: 33/34 gaps
    assert not timestamps_irregular({"packets": packets(cfr_ms)}, 0)
    vfr = [i * 40 for i in range(15)] + [560 + i * 100 for i in range(1, 16)]
    assert timestamps_irregular({"packets": packets(vfr)}, 0)
    # Other streams' packets (here irregular audio) do not count.
    mixed = packets(cfr_ms) + packets([0, 21, 90, 91, 500], index=1)
    assert not timestamps_irregular({"packets": mixed}, 0)
    # B-frame decode order is fine: pts are sorted first.
    assert not timestamps_irregular({"packets": packets([0, 3000, 1000, 2000, 6000, 4000, 5000])}, 0)
    assert not timestamps_irregular({"packets": packets([0, 40])}, 0)  # too few to tell
    # parse_probe reads the packets that probe() asks for in the same call as the streams.
    video = dict(VIDEO, r_frame_rate="10/1", avg_frame_rate="10/1")
    data = fmt_json(video)
    data["packets"] = packets(vfr)
    assert parse_probe("x", data, {}).variable_fps is True


def test_image_and_odd_fields():
    image = {"index": 0, "codec_name": "png", "codec_type": "video", "width": 64, "height": 48,
             "pix_fmt": "rgb24", "r_frame_rate": "25/1", "avg_frame_rate": "25/1"}
    info = parse_probe("x.png", fmt_json(image, fmt={"format_name": "png_pipe"}), {})
    assert info.still_image and info.duration is None and info.frame_count is None
    assert (info.matrix, info.transfer, info.primaries, info.color_range) == (None, None, None, None)
    untagged = dict(VIDEO, color_space="unknown", chroma_location="unspecified", profile="unknown",
                    field_order="unknown")
    info = parse_probe("x", fmt_json(untagged), {})
    assert (info.matrix, info.chroma_location, info.profile, info.field_order) == (None, None, None, None)
    assert not info.interlaced


@pytest.mark.parametrize("streams, fmt, needle", [
    ([AUDIO], FORMAT, "no video stream (audio only)"),
    ([], FORMAT, "no video stream"),
    ([dict(VIDEO, disposition={"attached_pic": 1}), AUDIO], FORMAT, "no video stream (audio only)"),
    ([dict(VIDEO, width=0)], FORMAT, "frame size"),
    ([dict(VIDEO, height="abc")], FORMAT, "frame size"),
    ([{k: v for k, v in VIDEO.items() if k != "pix_fmt"}], FORMAT, "pixel format"),
    ([dict(VIDEO, r_frame_rate="0/0", avg_frame_rate="abc")], FORMAT, "frame rate"),
    ([dict(VIDEO, codec_name="ansi")], {"format_name": "tty"}, "text file"),
])
def test_errors_are_one_line_probe_errors(streams, fmt, needle):
    with pytest.raises(ProbeError) as exc:
        parse_probe("bad.mkv", fmt_json(*streams, fmt=fmt), {})
    assert needle in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith("bad.mkv: ")


def test_fallback_to_avg_rate_and_stream_duration():
    video = dict(VIDEO, r_frame_rate="0/0", avg_frame_rate="25/1", duration="4.000000")
    info = parse_probe("x", fmt_json(video, fmt={"format_name": "mpegts"}), {})
    assert info.fps == 25 and info.avg_fps == 25 and info.duration == 4.0


# ---------------------------------------------------------------------------------------------
# Property tests: anything in, VideoInfo or ProbeError out.

GARBAGE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["0/0", "1/0", "abc", "-1/2", "30000/1001", "25", "1e999", "1e99", "nan", "inf",
                     "N/A", "", " 7 ", "3:2", "99999999999999999999/1", "1/99999999999999999999",
                     "yuv420p10le", "smpte2084", "Display Matrix", "unknown", "-90", "90.0"]),
)
JSONISH = st.recursive(GARBAGE_SCALARS,
                       lambda inner: st.one_of(st.lists(inner, max_size=4),
                                               st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)

STREAM_KEYS = sorted(set(VIDEO) | set(AUDIO) | {"side_data_list", "duration", "nb_read_packets"})
SD_TYPES = ["Display Matrix", "Mastering display metadata", "Content light level metadata",
            "DOVI configuration record", "HDR Dynamic Metadata SMPTE2094-40 (HDR10+)",
            "Dolby Vision RPU Data", "garbage"]
SD_KEYS = sorted(set(MASTERING) | set(CLL) | set(DOVI) | {"rotation"})

side_data = st.builds(lambda t, extra: {"side_data_type": t, **extra}, st.sampled_from(SD_TYPES),
                      st.dictionaries(st.sampled_from(SD_KEYS), GARBAGE_SCALARS, max_size=12))


@st.composite
def mutated_stream(draw, base=None, max_changes=6):
    """A plausible stream with some keys dropped or replaced by garbage."""
    base = dict(base if base is not None else draw(st.sampled_from([VIDEO, AUDIO, PGS, FONT])))
    for key in draw(st.lists(st.sampled_from(STREAM_KEYS), max_size=max_changes)):
        if draw(st.booleans()):
            base.pop(key, None)
        else:
            base[key] = draw(GARBAGE_SCALARS | JSONISH)
    if draw(st.booleans()):
        base["side_data_list"] = draw(st.lists(side_data, max_size=3) | JSONISH)
    return base


@st.composite
def mutated_probe(draw):
    # Mostly a lightly damaged video stream first (so parsing gets deep), then anything.
    first = draw(st.one_of(mutated_stream(VIDEO, 2), mutated_stream()))
    streams = [first] + draw(st.lists(mutated_stream(), max_size=3))
    if draw(st.booleans()):
        streams = draw(st.permutations(streams))
    fmt = dict(FORMAT)
    for key in draw(st.lists(st.sampled_from(["format_name", "duration", "tags"]), max_size=3)):
        fmt[key] = draw(GARBAGE_SCALARS | JSONISH)
    data = {"streams": streams, "format": fmt}
    if draw(st.booleans()):
        data["packets"] = draw(st.lists(st.fixed_dictionaries(
            {"stream_index": GARBAGE_SCALARS, "pts": GARBAGE_SCALARS}), max_size=6) | JSONISH)
    frames = draw(st.one_of(
        st.builds(lambda sds: {"frames": [{"side_data_list": sds}]}, st.lists(side_data, max_size=4)),
        JSONISH))
    return data, frames


#: The refusals parse_probe makes on purpose. Anything else (notably "cannot interpret ffprobe's
#: output (KeyError: ...)", the safety net that turns a parser bug into one line) fails the test.
DELIBERATE_REFUSALS = ("ffprobe returned no stream information", "no video stream (audio only)",
                       "no video stream", "a text file, not a video",
                       "the video stream has no valid index", "the video stream has no valid frame size",
                       "the video stream has no pixel format", "the video stream has no usable frame rate")


def _check(result_or_exc) -> None:
    if isinstance(result_or_exc, ProbeError):
        message = str(result_or_exc)
        assert "\n" not in message
        assert message.startswith("p.mkv: "), message
        assert message.removeprefix("p.mkv: ").startswith(DELIBERATE_REFUSALS), \
            f"not a deliberate refusal (a parser bug behind the safety net?): {message}"
        return
    info = result_or_exc
    assert isinstance(info, VideoInfo)
    assert info.width > 0 and info.height > 0 and info.fps > 0 and info.bit_depth > 0
    assert info.rotation in (0, 90, 180, 270)
    swapped = info.rotation in (90, 270)
    assert (info.display_width, info.display_height) == (
        (info.height, info.width) if swapped else (info.width, info.height))
    assert isinstance(info.hdr, HdrFormat)
    json.dumps(info.to_json(), allow_nan=False)


def _run(fmt, frames, packets=None):
    try:
        return parse_probe("p.mkv", fmt, frames, packets)
    except ProbeError as exc:
        return exc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH, JSONISH, JSONISH)
def test_arbitrary_json_never_crashes(fmt, frames, packets):
    _check(_run(fmt, frames, packets))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_probe())
def test_malformed_ffprobe_output_never_crashes(data):
    fmt, frames = data
    _check(_run(fmt, frames))


#: Keys of the main video stream that the parse needs (refusing without them is right); garbage
#: anywhere else must never stop a parse.
NEEDED = {"index", "codec_type", "width", "height", "pix_fmt", "r_frame_rate", "avg_frame_rate",
          "codec_name", "disposition"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(set(STREAM_KEYS) - NEEDED)), GARBAGE_SCALARS | JSONISH,
                       max_size=6),
       st.lists(mutated_stream(), max_size=3), st.lists(side_data, max_size=4) | JSONISH,
       st.dictionaries(st.sampled_from(["duration", "tags", "nb_streams"]), GARBAGE_SCALARS | JSONISH,
                       max_size=3))
def test_garbage_outside_the_needed_keys_still_parses(replaced, others, frame_sd, fmt_changes):
    """A video stream whose needed keys are intact parses, whatever the rest holds: a ProbeError
    here (the safety net included) is a bug, and the needed values come through unchanged."""
    video = dict(VIDEO, **replaced)
    frames = {"frames": [{"side_data_list": frame_sd}]}
    info = parse_probe("p.mkv", fmt_json(video, *others, fmt=dict(FORMAT, **fmt_changes)), frames)
    _check(info)
    assert (info.width, info.height) == (3840, 2160) and info.fps == Fraction(24000, 1001)
    assert info.codec == "hevc" and info.bit_depth == 10


MD_KEYS = sorted(k for k in MASTERING if k != "side_data_type")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(MD_KEYS),
                       GARBAGE_SCALARS | st.sampled_from(["1/2", "34000/50000", "10000000/10000", 0, 1]),
                       max_size=len(MD_KEYS)))
def test_garbage_mastering_display_is_none_or_valid(replaced):
    sd = dict(MASTERING, **replaced)
    info = parse_probe("x", fmt_json(VIDEO), frames_json(sd))
    md = info.mastering_display
    if md is not None:
        xy = md.red + md.green + md.blue + md.white
        assert 0 <= min(xy) and max(xy) <= 1
        assert md.max_luminance > 0 and md.min_luminance >= 0
    assert (info.hdr is HdrFormat.HDR10) == (md is not None)
    assert info.hdr in (HdrFormat.HDR10, HdrFormat.PQ10)
