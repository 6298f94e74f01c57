"""DIDNet on CUDA in half precision (skipped without a CUDA GPU)."""

from __future__ import annotations

import pytest
import torch

from didtv.models.align import deform_conv2d, torchvision_available
from didtv.models.didnet import TINY_CONFIG, DIDNet

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_tiny_half_precision_matches_float32(dtype):
    torch.manual_seed(0)
    model = DIDNet(**TINY_CONFIG).cuda().eval()
    frames = torch.rand(2, 7, 3, 64, 96, device="cuda")
    with torch.no_grad():
        ref_hdr, ref_sdr = model(frames)
        with torch.autocast("cuda", dtype=dtype):
            hdr, sdr = model(frames)
        half_hdr, _ = model.to(dtype)(frames.to(dtype))
    for out in (hdr, sdr, half_hdr):
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (hdr - ref_hdr).abs().max() < 2e-2
    assert (sdr - ref_sdr).abs().max() < 2e-2
    assert (half_hdr - ref_hdr).abs().max() < 2e-2


@pytest.mark.skipif(not torchvision_available(), reason="torchvision is not installed")
def test_torchvision_and_pure_torch_agree_on_cuda():
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(2, 21, 32, 32, device="cuda", generator=gen)
    offset = 4 * torch.randn(2, 2 * 7 * 9, 32, 32, device="cuda", generator=gen)
    mask = torch.rand(2, 7 * 9, 32, 32, device="cuda", generator=gen)
    weight = torch.randn(16, 21, 3, 3, device="cuda", generator=gen)
    tv = deform_conv2d(x, offset, mask, weight, padding=1, use_torchvision=True)
    pure = deform_conv2d(x, offset, mask, weight, padding=1, use_torchvision=False)
    torch.testing.assert_close(tv, pure, rtol=1e-4, atol=1e-3)


def test_runner_on_cuda_auto_precision_tiles_and_batches():
    """The convert path on CUDA: fp16 by default, batched windows, tiles = whole frame."""
    import numpy as np

    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    net = load_model("tiny")
    rng = np.random.default_rng(0)
    frames = [rng.random((3, 64, 96), dtype=np.float32) for _ in range(9)]
    cpu = list(Runner(net, device="cpu", precision="fp32").process(frames))
    gpu = Runner(load_model("tiny"), device="cuda", tile=32)
    assert gpu.precision == "fp16" and gpu.batch_for(64, 96) > 1
    out = list(gpu.process(frames))
    assert len(out) == 9
    for a, b in zip(cpu, out):
        assert np.abs(a - b).max() < 2e-2
