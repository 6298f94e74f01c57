"""The training loop: resumable exactly, with an EMA of the weights and a JSONL log.

A checkpoint (``out_dir/checkpoint.pt``, written atomically) holds the model, the EMA model,
the optimizer, the iteration and the config. Batches are drawn from
``numpy.random.default_rng([seed, iteration])``, so a resumed run draws the same batches as an
uninterrupted one. Checkpoints are loaded with ``torch.load(weights_only=True)`` (no pickle
code execution).
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from didtv.metrics import psnr
from didtv.models.registry import build, save_weights
from didtv.train.config import TrainConfig
from didtv.train.dataset import ClipSet

CHECKPOINT = "checkpoint.pt"


@torch.no_grad()
def validate(model, clips: ClipSet, device: torch.device, indices: list[int] | None = None) -> dict:
    """Mean PQ PSNR of the HDR centre frame over ``indices`` (whole frames, no cropping)."""
    from didtv.models.registry import load_model

    baseline = load_model("bt2408")
    model.eval()
    scores, base = [], []
    for i in indices if indices is not None else range(len(clips)):
        lq, _, hdr = clips.item(i)
        target = hdr[len(hdr) // 2]
        x = lq[None].to(device)
        scores.append(psnr(model(x)[0][0].cpu().numpy(), target.numpy()))
        base.append(psnr(baseline(lq[None, 3:4])[0].numpy(), target.numpy()))
    return {"psnr": float(np.mean(scores)), "psnr_bt2408": float(np.mean(base)), "clips": len(scores)}


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _restore(state: dict, model, ema, opt) -> int:
    """Loads a checkpoint's model, EMA and optimizer state; returns the iteration it reached."""
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["optimizer"])
    return int(state["iteration"])


def _branch_from(path: Path, model, ema, opt, device) -> int:
    """Loads another run's checkpoint into a new run; returns the iteration it had reached."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"init_from: {path} does not exist") from exc
    try:
        return _restore(state, model, ema, opt)
    except RuntimeError as exc:
        raise ValueError(f"init_from: {path} holds another architecture than this config's model") from exc


def _start_from_weights(path: Path, model, ema, model_arch: str = "didnet") -> list[str]:
    """Loads a weights file into model and EMA; returns the names of parameters it lacked."""
    from didtv.models.registry import read_weights

    arch, _, state, _ = read_weights(path)
    if arch != model_arch:
        raise ValueError(f"init_weights: {path} holds a {arch!r} model, not {model_arch!r}")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ValueError(f"init_weights: {path} does not fit this config's model: {exc}") from exc
    if result.unexpected_keys:
        raise ValueError(f"init_weights: {path} has tensors this config's model lacks: "
                         f"{', '.join(result.unexpected_keys)}")
    ema.load_state_dict(model.state_dict())
    return list(result.missing_keys)


def train(cfg: TrainConfig, *, resume: bool = False, log: Callable[[dict], None] | None = None,
          stop_after: int | None = None) -> Path:
    """Train until ``cfg.iterations`` (or ``stop_after`` more iterations); returns out_dir."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    torch.manual_seed(cfg.seed)
    model = build(cfg.arch, cfg.model_config()).to(device)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, branched, new_params = 0, False, None
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        # A key added to TrainConfig after the checkpoint was written counts as its default.
        if {**TrainConfig().to_dict(), **state["config"]} != cfg.to_dict():
            raise ValueError(f"{ckpt_path} was written with a different config; refusing to resume")
        start = _restore(state, model, ema, opt)
    elif ckpt_path.exists():
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue, or choose another out_dir")
    elif cfg.init_from:
        start, branched = _branch_from(Path(cfg.init_from), model, ema, opt, device), True
    elif cfg.init_weights:
        new_params = _start_from_weights(Path(cfg.init_weights), model, ema, cfg.arch)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    train_set = ClipSet(cfg.train_dirs, exclude_families=cfg.exclude_families)
    val_set = ClipSet(cfg.val_data) if cfg.val_data and Path(cfg.val_data).exists() else None
    val_idx = None
    if val_set is not None and cfg.val_clips:
        val_idx = list(np.linspace(0, len(val_set) - 1, min(cfg.val_clips, len(val_set))).astype(int))
    log_file = (out / "log.jsonl").open("a")

    def emit(record: dict) -> None:
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        if log:
            log(record)

    if branched:
        emit({"iteration": start, "init_from": cfg.init_from})
    if new_params is not None:
        emit({"iteration": start, "init_weights": cfg.init_weights, "new_parameters": new_params})
    end = cfg.iterations if stop_after is None else min(cfg.iterations, start + stop_after)
    t0, losses = time.monotonic(), []
    it = start
    for it in range(start, end):
        model.train()
        rng = np.random.default_rng([cfg.seed, it])
        lq, views, sdr, hdr = (t.to(device) for t in cfg_batch(train_set, rng, cfg))
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(it)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            cond = model.condition_vector(views)  # the condition sees the whole view, as at inference
            hdr_hat, sdr_hat = model(lq, cond)
        l_hdr = F.l1_loss(hdr_hat, hdr)
        loss = cfg.hdr_weight * l_hdr
        l_aux = torch.zeros(())
        if sdr_hat is not None and cfg.aux_weight > 0:
            l_aux = F.l1_loss(sdr_hat, sdr)
            loss = loss + cfg.aux_weight * l_aux
        if cfg.reg_weight > 0:
            loss = loss + cfg.reg_weight * model.regularization()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + it) / (10 + it))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        losses.append((loss.item(), l_hdr.item(), l_aux.item()))
        done = it + 1
        if done % cfg.log_every == 0:
            arr = np.array(losses)
            emit({"iteration": done, "loss": arr[:, 0].mean(), "l1_hdr": arr[:, 1].mean(),
                  "l1_aux": arr[:, 2].mean(), "lr": cfg.lr_at(it),
                  "sec_per_it": (time.monotonic() - t0) / len(losses)})
            losses, t0 = [], time.monotonic()
        if done % cfg.checkpoint_every == 0 or done == end:
            _save_checkpoint(ckpt_path, {"model": model.state_dict(), "ema": ema.state_dict(),
                                         "optimizer": opt.state_dict(), "iteration": done,
                                         "config": cfg.to_dict()})
        if val_set is not None and (done % cfg.val_every == 0 or done == end):
            v = validate(ema, val_set, device, val_idx)
            emit({"iteration": done, "val": v})
            save_weights(ema.cpu(), out / f"ema-{done:07d}.safetensors", arch=cfg.arch,
                         extra={"didtv.iteration": str(done)})
            ema.to(device)
    log_file.close()
    save_weights(ema.cpu(), out / "final.safetensors", arch=cfg.arch, extra={"didtv.iteration": str(end)})
    return out


def cfg_batch(train_set: ClipSet, rng: np.random.Generator, cfg: TrainConfig):
    return train_set.batch(rng, cfg.batch_size, cfg.patch)
