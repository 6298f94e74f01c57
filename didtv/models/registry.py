"""Model registry: one table maps a name to how to build it and where its weights live.

Learned and analytic models are registered the same way, so the pipeline does not care which it
runs. Nothing is imported until a model is asked for (no side effects at import).

Weights are safetensors files (never pickle). Each file carries, in its metadata, the
architecture name and the keyword hyperparameters that built it, so a checkpoint rebuilds its own
network::

    didtv.format = "1"
    didtv.arch   = "didnet"                 # a key of ARCHITECTURES (an allow-list)
    didtv.config = '{"channels": 32, ...}'  # JSON, keyword arguments of the architecture
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from didtv.errors import ModelError
from didtv.models.spec import ModelSpec

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
FORMAT_VERSION = "1"

#: Architectures that may be built from a weights file. Only these names are honoured in a
#: file's metadata: a weights file can never make didtv import arbitrary code.
ARCHITECTURES: dict[str, str] = {
    "didnet": "didtv.models.didnet:DIDNet",
    "didlite": "didtv.models.lite:DIDLite",
    "bt2408": "didtv.models.analytic:BT2408",
    "bt2446a": "didtv.models.analytic:BT2446AInverse",
}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: architecture + hyperparameters + (for learned models) a weights file."""

    name: str
    arch: str
    config: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    description: str = ""
    # why the package has no weights for it, where that is a decision (said when it is asked for)
    unshipped: str = ""

    @property
    def learned(self) -> bool:
        return self.weights is not None

    @property
    def weights_path(self) -> Path | None:
        return WEIGHTS_DIR / self.weights if self.weights else None

    def weights_present(self) -> bool:
        path = self.weights_path
        return path is not None and path.is_file()


_MODELS: dict[str, ModelInfo] = {}


def register(info: ModelInfo) -> None:
    if info.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {info.arch!r}")
    _MODELS[info.name] = info


def registered() -> list[ModelInfo]:
    """Every registered model, in registration order."""
    return list(_MODELS.values())


def get_info(name: str) -> ModelInfo:
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(_MODELS)
        raise ModelError(
            f"unknown model {name!r}", hint=f"choose one of: {known}, or a .safetensors file"
        ) from None


def _arch_class(arch: str) -> Callable[..., Any]:
    try:
        target = ARCHITECTURES[arch]
    except KeyError:
        raise ModelError(f"unknown architecture {arch!r} (allowed: {', '.join(ARCHITECTURES)})") from None
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def build(arch: str, config: Mapping[str, Any] | None = None):
    """Build a randomly initialised network (or an analytic model) from its hyperparameters."""
    cls = _arch_class(arch)
    try:
        return cls(**dict(config or {}))
    except TypeError as exc:
        raise ModelError(f"architecture {arch!r} cannot be built with {dict(config or {})}: {exc}") from exc


def save_weights(module, path: str | Path, *, arch: str, extra: Mapping[str, str] | None = None) -> Path:
    """Write ``module``'s parameters and buffers to safetensors, with the metadata that rebuilds it.

    ``module.config`` (a dict of its keyword hyperparameters) must exist.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    meta = {
        "didtv.format": FORMAT_VERSION,
        "didtv.arch": arch,
        "didtv.config": json.dumps(dict(module.config), sort_keys=True),
    }
    meta.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)
    return path


def read_weights(path: str | Path) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]:
    """Read a didtv safetensors file -> (arch, config, state_dict, metadata). Never unpickles."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise ModelError(f"weights file {path} is not a readable safetensors file: {exc}") from exc
    if meta.get("didtv.format") != FORMAT_VERSION or "didtv.arch" not in meta:
        raise ModelError(f"weights file {path} has no didtv metadata (format {FORMAT_VERSION} expected)")
    try:
        config = json.loads(meta.get("didtv.config", "{}"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"weights file {path} has damaged didtv.config metadata: {exc}") from exc
    return meta["didtv.arch"], config, state, meta


def _with_defaults(arch: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` completed with the architecture's keyword defaults: a file written before a
    hyperparameter existed names the same network as one that spells out its default."""
    import inspect

    params = inspect.signature(_arch_class(arch)).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return {**defaults, **dict(config)}


def _load_state(module, state: dict, path: Path, expected: Mapping[str, Any]) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(
            f"weights file {path} does not fit the network (expected configuration {dict(expected)}): {first}"
        ) from exc


def load_model(name: str | Path, *, pretrained: bool = True, device: str = "cpu"):
    """Return a ready model (a ``torch.nn.Module`` with a ``.spec``: :class:`ModelSpec`).

    ``name`` is a registered name (``didtv models`` lists them) or a path to a ``.safetensors``
    file written by :func:`save_weights`. ``pretrained=False`` builds a randomly initialised
    network (for tests and training). The model is in eval mode on ``device``.
    """
    path = Path(name)
    if str(name).endswith(".safetensors"):
        arch, config, state, _ = read_weights(path)
        model = build(arch, config)
        _load_state(model, state, path, config)
    else:
        info = get_info(str(name))
        model = build(info.arch, info.config)
        if info.learned and pretrained:
            wpath = info.weights_path
            if not info.weights_present():
                raise ModelError(
                    f"model {info.name!r} has no trained weights "
                    + (f"in this package: {info.unshipped}" if info.unshipped else f"yet (expected {wpath})"),
                    hint="use --model lite, tiny or bt2408, or pass a .safetensors file trained with 'didtv train'",
                )
            arch, config, state, _ = read_weights(wpath)
            if arch != info.arch or _with_defaults(arch, config) != _with_defaults(info.arch, info.config):
                raise ModelError(
                    f"weights file {wpath} was built as {arch} {config}, "
                    f"expected {info.arch} {dict(info.config)}"
                )
            _load_state(model, state, wpath, info.config)
    if not isinstance(getattr(model, "spec", None), ModelSpec):
        raise ModelError(f"model {name!r} does not describe itself (no ModelSpec)")
    return model.to(device).eval()


def _register_builtins() -> None:
    register(ModelInfo("bt2408", "bt2408", description=(
        "BT.2408 display-light mapping: BT.1886 decode, SDR white to 203 cd/m2, BT.709->BT.2020, PQ")))
    register(ModelInfo("bt2446a", "bt2446a", description=(
        "Inverse of BT.2446 Method A tone mapping (SDR white to 1000 cd/m2 peak)")))
    # Literal copies of didtv.models.didnet.FULL_CONFIG / TINY_CONFIG, so that importing the
    # registry does not import torch; tests/unit/test_didnet.py checks that they agree.
    full = {
        "name": "full", "channels": 64, "num_blocks": 2, "num_dmc": 3, "dmc_kernel": 1,
        "offset_channels": 32, "offset_depth": 3, "deform_groups": 7, "max_offset": 16.0,
        "cond_channels": 22, "cond_size": 64, "cond_input": 64, "use_ffe": True,
        "condition": "3d", "modulation": "kernel", "aux_head": True, "base": "bt2408",
    }
    tiny = {**full, "name": "tiny", "channels": 32, "offset_channels": 16, "cond_channels": 16,
            "cond_size": 32}
    register(ModelInfo("full", "didnet", full, "didnet-full.safetensors", description=(
        "DIDNet: 7-frame deformable artifact removal + condition-modulated (DMC) tone mapping"),
        unshipped=("not shipped since 2026-12-06, behind Tiny on the held-out protocol "
                   "(docs/model-card.md, 'DIDNet Full'; train it with didtv/train/configs/full.toml)")))
    register(ModelInfo("tiny", "didnet", tiny, "didnet-tiny.safetensors", description=(
        "DIDNet Tiny: the same design with half the channels, about 1/3 of the cost")))
    # Literal copy of didtv.models.lite.LITE_CONFIG (tests/unit/test_lite.py checks they agree).
    lite = {"name": "lite", "channels": 24, "num_blocks": 2, "num_dmc": 2, "scale": 4, "context": 1,
            "luts": 6, "lut_size": 17, "cond_channels": 16, "cond_size": 32, "cond_input": 32,
            "cond_blocks": 5}
    register(ModelInfo("lite", "didlite", lite, "didnet-lite.safetensors", description=(
        "DIDNet Lite: restoration at 1/4 size + condition-weighted 3D LUTs; the fast CPU model")))


_register_builtins()


#: ``--model auto`` picks, per device, the first of these whose weights are present (analytic
#: ones always are). On a CPU the learned model users can wait for is Lite (1/40 of Tiny's FLOPs,
#: docs/model-card.md); on CUDA Tiny (better on the real grades, and fast enough there).
AUTO_ORDER: dict[str, tuple[str, ...]] = {"cuda": ("tiny", "lite", "bt2408"), "cpu": ("lite", "bt2408")}
_AUTO_WHY = {"tiny": "the best measured learned model, fast on a GPU",
             "lite": "the learned model fast enough for a CPU",
             "bt2408": "no learned model's weights are installed"}


def _device_kind(device) -> str:
    """``None``/"auto" (CUDA when available), "cpu", "cuda", "cuda:1", a torch.device -> cpu|cuda."""
    text = "" if device is None else str(device)
    if text in ("", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if text.startswith("cuda") else "cpu"


def auto_choice(device=None) -> tuple[str, str]:
    """What ``--model auto`` runs on ``device`` and why: ``(name, reason)``."""
    kind = _device_kind(device)
    for name in AUTO_ORDER[kind]:
        info = _MODELS.get(name)
        if info is not None and (not info.learned or info.weights_present()):
            return name, f"auto on {kind.upper()}: {_AUTO_WHY.get(name, 'first available')}"
    return "bt2408", f"auto on {kind.upper()}: {_AUTO_WHY['bt2408']}"


def default_model_name(device=None) -> str:
    """The model ``--model auto`` runs on ``device`` (see :func:`auto_choice`)."""
    return auto_choice(device)[0]
