"""Training configuration, read from TOML. Unknown keys are errors (a typo must not train for hours
with a default)."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from didtv.errors import DidtvError


class ConfigError(DidtvError):
    exit_code = 2


@dataclass(frozen=True)
class TrainConfig:
    """Defaults are the paper's recipe where it gives one (Adam, lr 5e-4, halved every 60k
    iterations after 100k, L1 0.8 HDR + 0.2 auxiliary SDR); the rest is ours (docs/training.md)."""

    train_data: str | list[str] = "data/train"          # a data folder, or several (their clips together)
    val_data: str = "data/val"
    # Continuous operator families whose clips are left out of train_data (leave-one-family-out
    # runs without a separate data build: docs/evaluation.md, "Protocols")
    exclude_families: list[str] = field(default_factory=list)
    out_dir: str = "runs/tiny"
    model: str = "tiny"                                 # base configuration: tiny | full | lite
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. condition = "2d" (ablations)
    iterations: int = 100_000
    batch_size: int = 8
    patch: int = 96
    lr: float = 5e-4
    lr_halve_after: int = 100_000
    lr_halve_every: int = 60_000
    hdr_weight: float = 0.8
    aux_weight: float = 0.2                             # 0 = the "no auxiliary loss" ablation
    reg_weight: float = 0.0                             # x model.regularization() (Lite: LUT smoothness)
    ema_decay: float = 0.999
    seed: int = 0
    threads: int = 0                                    # 0 = torch's default
    device: str = "auto"
    # "bf16": bfloat16 autocast for the forward pass (the outputs, the base mappings and the loss
    # stay float32). Worth it where the CPU has bfloat16 matrix units (AMX, AVX-512 BF16) or on a
    # GPU; on AVX2-only CPUs it is slower than float32 (docs/training.md).
    precision: str = "fp32"
    log_every: int = 50
    val_every: int = 1000
    val_clips: int = 24                                 # a fixed subset during training; 0 = all
    checkpoint_every: int = 250
    # Branch from another run: its checkpoint's model, EMA and optimizer state and iteration
    # count start this run (batches continue the same sequence); the rest of this config, e.g.
    # a learning-rate schedule, applies from there. Ignored when resuming this run's own state.
    init_from: str = ""
    # Start from a weights file instead (a .safetensors written by save_weights, e.g. the shipped
    # Tiny): model and EMA both take its tensors; parameters it lacks (a part added to the network,
    # e.g. the aux head of a model trained without it) keep their initialisation; a fresh optimizer;
    # iteration 0, so this config's schedule applies from its start. Exclusive with init_from.
    init_weights: str = ""

    def lr_at(self, iteration: int) -> float:
        if iteration < self.lr_halve_after:
            return self.lr
        return self.lr * 0.5 ** (1 + (iteration - self.lr_halve_after) // self.lr_halve_every)

    @property
    def arch(self) -> str:
        """The registry architecture of ``model`` (``didnet`` or ``didlite``)."""
        return "didlite" if self.model == "lite" else "didnet"

    def model_config(self) -> dict[str, Any]:
        from didtv.models.didnet import FULL_CONFIG, TINY_CONFIG
        from didtv.models.lite import LITE_CONFIG

        base = {"tiny": TINY_CONFIG, "full": FULL_CONFIG, "lite": LITE_CONFIG}.get(self.model)
        if base is None:
            raise ConfigError(f"model = {self.model!r}; allowed: tiny, full, lite")
        cfg = {**base, **self.model_overrides}
        if self.aux_weight == 0 and "aux_head" not in self.model_overrides and self.arch == "didnet":
            cfg["aux_head"] = False
        return cfg

    @property
    def train_dirs(self) -> list[str]:
        """``train_data`` as a list of folders."""
        return [self.train_data] if isinstance(self.train_data, str) else list(self.train_data)

    def __post_init__(self) -> None:
        from didtv.data.families import FAMILIES

        unknown = [f for f in self.exclude_families if f not in FAMILIES]
        if unknown:
            raise ConfigError(f"exclude_families: unknown {', '.join(map(repr, unknown))}; allowed: {', '.join(FAMILIES)}")
        if not self.train_dirs or not all(isinstance(d, str) and d for d in self.train_dirs):
            raise ConfigError(f"train_data = {self.train_data!r}: a data folder or a list of them")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision = {self.precision!r}; allowed: fp32, bf16")
        if self.init_from and self.init_weights:
            raise ConfigError("init_from and init_weights exclude each other: branch from a run or from weights")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    allowed = {f.name: f for f in fields(TrainConfig)}
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{path}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    # Relative paths are relative to the working directory, like every other CLI path.
    try:
        return TrainConfig(**data)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
