"""Preview pictures: judge a conversion on an ordinary (SDR) screen, frame by frame.

No click, no rich: :func:`preview` writes PNG files and a JSON summary, and returns a
:class:`PreviewResult`. For each chosen frame ``N`` (file names ``frame{N:06d}_*.png``):

``_sdr.png``
    The SDR input as decoded (BT.709 R'G'B', 8 bits), what the SDR video shows.
``_hdr-view.png``
    The HDR output tone-mapped for an SDR screen (:func:`view_sdr`). PQ code values shown as if
    they were sRGB look dim and washed out (100 cd/m2 is PQ 0.51), which is the trap this
    picture avoids.
``_nits.png``
    False colour of the output's luminance in cd/m2, bands :data:`NITS_BANDS`, with a legend
    giving each band's share of pixels.
``_histogram.png``
    Luminance histograms on a log cd/m2 axis: the SDR input as a 100 cd/m2 BT.1886 display shows
    it, the HDR output, and the reference when given.

With ``reference`` (an HDR10/PQ video of the same frames) also ``_reference-view.png``,
``_reference-nits.png`` and ``_error.png`` (a ΔE_ITP map, bands :data:`ERROR_BANDS`), and the
metrics (PSNR and ΔE_ITP from :mod:`didtv.metrics`, docs/evaluation.md's conventions) go into
``preview.json``.

Frames are picked by decoding the input once, in order, and keeping only the frames the chosen
windows need (a model with a 7-frame window needs frames N-3 .. N+3): memory stays bounded by
a few windows whatever the length of the video. Decoding stops after the last chosen window.
The model is run through the same :class:`~didtv.pipeline.runner.Runner` as ``convert``, one
window at a time and without a shot history: a model whose global condition ``convert`` averages
over a shot uses the chosen window's own condition (as at the first frame of a shot), and a
model with ``reset_state`` is reset before each chosen frame. The HDR pictures show the model's
output before x265 (no compression).

Modules: :mod:`~didtv.preview.pictures` (the pure picture functions: viewing map, luminance,
false colour), :mod:`~didtv.preview.drawing` (PNG writing, legends, histograms),
:mod:`~didtv.preview.make` (frame choice and :func:`preview` itself).
"""

from didtv.preview.drawing import (HIST_BINS_PER_DECADE, HIST_RANGE, histogram_picture, legend_strip,
                                   with_legend, write_png)
from didtv.preview.make import (SCHEMA_VERSION, PreviewError, PreviewFrame, PreviewResult, default_frames,
                                parse_frames, preview, window_of)
from didtv.preview.pictures import (ERROR_BANDS, NITS_BANDS, SDR_DISPLAY_PEAK, VIEW_GAMMA, VIEW_WHITE,
                                    band_index, false_colour, hdr_nits, luminance, sdr_nits, to_uint8,
                                    view_sdr)

__all__ = ["preview", "parse_frames", "PreviewError", "PreviewFrame", "PreviewResult", "SCHEMA_VERSION",
           "default_frames", "window_of", "view_sdr", "to_uint8", "luminance", "sdr_nits", "hdr_nits",
           "band_index", "false_colour", "write_png", "legend_strip", "with_legend", "histogram_picture",
           "NITS_BANDS", "ERROR_BANDS", "VIEW_WHITE", "VIEW_GAMMA", "SDR_DISPLAY_PEAK", "HIST_RANGE",
           "HIST_BINS_PER_DECADE"]
