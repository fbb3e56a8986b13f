"""Training configuration: one frozen dataclass, JSON in and out, overrides with type checking, named presets.

Fields left as None take the model kind's default (``get_spec(model).defaults``) in ``resolved()``; the run
folder always stores the resolved config, so a run can be reproduced from its config.json alone.

Renamed settings (``RENAMED``) are still read under their old names, from an older config.json, a saved preset,
a checkpoint or a ``--set old=value`` override, with their old meaning: ``balance_copies`` is now
``paired_repeats`` (the recipe's on-disk copies of paired samples are ``paired_copies``, a different setting).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from dataclasses import InitVar, dataclass, fields
from pathlib import Path

from ..errors import UserError
# MODEL_DEPENDENT: the fields whose default depends on the model kind; they return to None (the kind's default)
# when the model changes. Both come from the model specs (torch-free).
from ..models.spec import MODEL_DEPENDENT, MODEL_NAMES, get_spec  # noqa: F401 (MODEL_NAMES is re-exported)

RELATIVISTIC = ("none", "rsgan", "ragan", "ralsgan")
#: Old setting name -> new name, same meaning (read from older configs, presets, checkpoints and overrides).
RENAMED = {"balance_copies": "paired_repeats"}


@dataclass(frozen=True)
class TrainConfig:
    # What to train.
    model: str = "cyclegan"
    image_size: int = 128           # crop size the networks see
    load_size: int = 0              # resize to this, then random-crop image_size (0: resize to image_size, no crop)
    flip: bool = True               # random horizontal flip (the same flip for both sides of a known pair)
    ngf: int = 64                   # generator width
    ndf: int = 64                   # discriminator width
    n_blocks: int = 9               # residual blocks of the ResNet generator (cyclegan, hybrid)
    init_gain: float = 0.02         # std of the normal init
    # Optimisation.
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    n_epochs: int = 100             # epochs at constant lr
    n_epochs_decay: int = 100       # epochs of linear decay to zero
    max_iters: int = 0              # >0: compress the whole schedule into this many iterations
    # Loss weights (None: the model kind's default).
    lambda_gan: float = 1.0
    lambda_cycle: float = 10.0
    lambda_identity: typing.Optional[float] = None  # x lambda_cycle (reference); cyclegan 0.5, hybrid 1.0
    lambda_l1: typing.Optional[float] = None        # pix2pix 100, hybrid 150 (paired samples only)
    lambda_imp: float = 0.5
    implicit_pair_loss: bool = False  # not in paper 000: L_imp of summary 001 (cyclegan)
    relativistic: str = "none"        # "none", "rsgan" (paper 002 Eq. 1-2), "ragan" or "ralsgan" (average variants)
    # hybrid: each paired sample appears k times per epoch (k = 1: once, like any sample); 0: k is chosen so that
    # the paired repeats match the unpaired samples in number (paper 002 Sec. 4.1.5). Formerly ``balance_copies``.
    paired_repeats: int = 1
    pool_size: typing.Optional[int] = None  # image pool; cyclegan/hybrid 50, pix2pix 0
    # Reproducibility and machinery.
    seed: int = 0
    deterministic: bool = False     # bit-exact runs and resumes (slower; CPU exact, CUDA best effort)
    threads: int = 0                # CPU threads (0: torch's default)
    device: str = "auto"            # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps
    save_every: int = 1000          # iterations between checkpoints (latest.pt + iter_XXXXXX.pt)
    keep_last: int = 3              # periodic checkpoints kept besides those at multiples of keep_every
    keep_every: int = 0             # periodic checkpoints at multiples of this are never deleted (0: none)
    sample_every: int = 500         # iterations between sample grids
    log_every: int = 10             # iterations between metrics lines and status updates
    n_samples: int = 3              # test images per domain in the sample grid
    init_from: str = ""             # checkpoint file or run folder to copy compatible networks from
    # The old name of paired_repeats, accepted by the constructor only (not stored, not in to_dict()).
    balance_copies: InitVar[typing.Optional[int]] = None

    def __post_init__(self, balance_copies=None):
        if balance_copies is not None:
            if self.paired_repeats not in (1, balance_copies):
                raise UserError("balance_copies is the old name of paired_repeats; give only paired_repeats.")
            object.__setattr__(self, "paired_repeats", balance_copies)
        self.validate()

    # ----- checks --------------------------------------------------------------------------------
    def validate(self) -> None:
        def need(cond, sentence):
            if not cond:
                raise UserError(sentence)

        spec = get_spec(self.model)  # an unknown kind is a one-sentence UserError
        need(self.relativistic in RELATIVISTIC,
             f"relativistic must be one of {', '.join(RELATIVISTIC)}, got {self.relativistic!r}.")
        need(self.image_size >= 16 and self.image_size % 4 == 0,
             f"image_size must be a multiple of 4 and at least 16, got {self.image_size}.")
        problem = spec.check_config(self)  # the kind's own rules (pix2pix: the U-Net's power-of-two size)
        need(problem is None, problem)
        need(self.load_size == 0 or self.load_size >= self.image_size,
             f"load_size ({self.load_size}) must be 0 or at least image_size ({self.image_size}); set load_size too.")
        for name in ("ngf", "ndf", "batch_size", "save_every", "sample_every", "log_every"):
            need(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("n_blocks", "n_epochs", "n_epochs_decay", "max_iters", "paired_repeats", "threads",
                     "keep_every", "n_samples"):
            need(getattr(self, name) >= 0, f"{name} must not be negative, got {getattr(self, name)}.")
        need(self.keep_last >= 1, f"keep_last must be at least 1, got {self.keep_last}.")
        need(self.n_epochs + self.n_epochs_decay >= 1, "n_epochs + n_epochs_decay must be at least 1.")
        need(self.lr > 0 and 0 <= self.beta1 < 1, f"lr must be positive and beta1 in [0, 1), got {self.lr}, {self.beta1}.")
        for name in ("lambda_gan", "lambda_cycle", "lambda_identity", "lambda_l1", "lambda_imp", "init_gain"):
            value = getattr(self, name)
            need(value is None or value >= 0, f"{name} must not be negative, got {value}.")
        need(self.pool_size is None or self.pool_size >= 0, f"pool_size must not be negative, got {self.pool_size}.")
        need(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
             f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}.")

    # ----- model defaults ------------------------------------------------------------------------
    def resolved(self) -> "TrainConfig":
        """A copy with every None replaced by the model kind's default."""
        defaults = get_spec(self.model).defaults  # torch-free: the config is readable without building networks
        changes = {f.name: defaults[f.name] for f in fields(self) if getattr(self, f.name) is None}
        return dataclasses.replace(self, **changes)

    # ----- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if not isinstance(data, dict):
            raise UserError("A training config must be a JSON object.")
        return cls().with_overrides(data)

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> "TrainConfig":
        """Accepts JSON text or a path to a JSON file."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            try:
                text = path.read_text()
            except OSError as exc:
                raise UserError(f"Cannot read the config file {path} ({exc.strerror or exc}).")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"The training config is not valid JSON ({exc.msg} at line {exc.lineno}).")
        return cls.from_dict(data)

    # ----- overrides -----------------------------------------------------------------------------
    def with_overrides(self, overrides: dict | list | tuple | None) -> "TrainConfig":
        """A copy with some fields changed, from a dict or from "key=value" strings (as typed on a CLI).

        Strings are converted to the field's type; unknown keys and bad values raise a one-sentence UserError.
        """
        if not overrides:
            return self
        if isinstance(overrides, (list, tuple)):
            pairs = {}
            for item in overrides:
                if not isinstance(item, str) or "=" not in item:
                    raise UserError(f"Overrides are written key=value, got {item!r}.")
                key, value = item.split("=", 1)
                pairs[key.strip()] = value.strip()
            overrides = pairs
        known = {f.name: f for f in fields(self)}
        hints = typing.get_type_hints(type(self))
        overrides = dict(overrides)
        for old, new in RENAMED.items():  # an older config, preset or override: the old name, the old meaning
            if old in overrides:
                value = overrides.pop(old)
                if new in overrides and _convert(new, overrides[new], hints[new]) != _convert(new, value, hints[new]):
                    raise UserError(f"{old} is the old name of {new}; give only {new}.")
                overrides.setdefault(new, value)
        changes = {}
        for key, value in overrides.items():
            if key not in known:
                close = [k for k in known if key.lower() in k or k in key.lower()]
                hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
                raise UserError(f"Unknown training setting {key!r}{hint}.")
            changes[key] = _convert(key, value, hints[key])
        if changes.get("model", self.model) != self.model:
            for name in MODEL_DEPENDENT:  # e.g. a cyclegan's lambda_l1 = 0 must not carry over to pix2pix
                changes.setdefault(name, None)
        return dataclasses.replace(self, **changes)


def _convert(key: str, value, hint):
    """Convert a JSON value or a typed string to the field's type, or say in one sentence why not."""
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if isinstance(value, str):
        text = value.strip()
        if optional and text.lower() in ("", "none", "null", "default"):
            return None
        if base is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise UserError(f"Setting {key!r} must be true or false, got {value!r}.")
        if base is int:
            try:
                return int(text)
            except ValueError:
                raise UserError(f"Setting {key!r} must be a whole number, got {value!r}.")
        if base is float:
            try:
                return float(text)
            except ValueError:
                raise UserError(f"Setting {key!r} must be a number, got {value!r}.")
        return value
    if value is None:
        if optional:
            return None
        raise UserError(f"Setting {key!r} cannot be empty.")
    if base is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"Setting {key!r} must be true or false, got {value!r}.")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"Setting {key!r} must be a whole number, got {value!r}.")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"Setting {key!r} must be a number, got {value!r}.")
    if base is str:
        if isinstance(value, str):
            return value
        raise UserError(f"Setting {key!r} must be text, got {value!r}.")
    return value


# ----- presets ------------------------------------------------------------------------------------
PRESETS: dict[str, TrainConfig] = {
    # Paper 000 / reference settings at 128x128: resize to 143 (the reference's 286/256 ratio), random crop
    # 128, flip, batch 1, 100 + 100 epochs.
    "paper-128": TrainConfig(image_size=128, load_size=143, ngf=64, ndf=64, n_blocks=9, batch_size=1,
                             n_epochs=100, n_epochs_decay=100, save_every=5000, sample_every=1000, log_every=50),
    # Paper 002's hybrid paired + unpaired training, setting by setting:
    #   model hybrid             CycleGAN on every sample plus L1 on the known pairs (Sec. 3.3); CycleGAN's
    #                            networks (Sec. 3.4): ResNet G with 9 blocks and instance norm, 70x70 PatchGAN.
    #   relativistic rsgan       the relativistic discriminator of Sec. 3.3.1, Eq. (1)-(2):
    #                            D_rel(y, y_hat) = sigmoid(C(y) - C(y_hat)), in both directions.
    #   lambda_gan 1, lambda_cycle 10, lambda_identity 1.0 (x lambda_cycle = 10), lambda_l1 150
    #                            lambda_1..lambda_4 of the total loss, Eq. (6), as chosen in Sec. 3.5.
    #   paired_repeats 0         copies of the paired samples so that they match the unpaired ones in number
    #                            (Sec. 4.1.5, "Balancing is critical").
    #   batch 1, lr 2e-4, pool 50, flip, lr constant for half the epochs then linearly to zero   Sec. 3.5
    #                            (100 + 100 epochs as paper-128: Sec. 3.5 only says the count grows with the data;
    #                            beta1 0.5 is the CycleGAN reference's, the paper names Adam without betas).
    #   image_size 128, load_size 143   not the paper's size: Sec. 3.5 resizes to 286 and crops 256; the lab's
    #                            faces are 128 (paper 000), so this keeps Sec. 3.5's 286/256 ratio at 128.
    #                            --set image_size=256,load_size=286 trains at the paper's own size.
    "paper-002": TrainConfig(model="hybrid", image_size=128, load_size=143, flip=True, ngf=64, ndf=64, n_blocks=9,
                             batch_size=1, lr=2e-4, beta1=0.5, n_epochs=100, n_epochs_decay=100, lambda_gan=1.0,
                             lambda_cycle=10.0, lambda_identity=1.0, lambda_l1=150.0, relativistic="rsgan",
                             paired_repeats=0, pool_size=50, save_every=5000, sample_every=1000, log_every=50),
    # A lite CycleGAN that visibly learns on a 2-core CPU in about five minutes: 64x64, ngf/ndf 32, 6 blocks,
    # 1200 iterations (constant lr for 600, then linear decay), ~0.25 s per iteration.
    "cpu-demo-64": TrainConfig(image_size=64, load_size=72, ngf=32, ndf=32, n_blocks=6, batch_size=1,
                               n_epochs=10, n_epochs_decay=10, max_iters=1200, save_every=200, sample_every=100,
                               log_every=10),
}


def _preset_path(name: str, directory) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name or ""):
        raise UserError(f"Preset names use letters, digits, '-', '_' and '.', got {name!r}.")
    return Path(directory) / f"{name}.json"


def save_preset(name: str, cfg: TrainConfig, directory) -> Path:
    """Write a named preset as JSON (atomically) into ``directory``."""
    from ..workspace import write_json_atomic

    path = _preset_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, cfg.to_dict())
    return path


def load_preset(name: str, directory=None) -> TrainConfig:
    """A preset saved in ``directory``, else a built-in one from PRESETS."""
    if directory is not None:
        path = _preset_path(name, directory)
        if path.exists():
            return TrainConfig.from_json(path)
    if name in PRESETS:
        return PRESETS[name]
    known = sorted(PRESETS) + (sorted(p.stem for p in Path(directory).glob("*.json")) if directory else [])
    raise UserError(f"Unknown preset {name!r}; known presets are {', '.join(known)}.")


def preset_names(directory=None) -> list[str]:
    """The built-in presets, then the ones saved in ``directory``."""
    saved = sorted(p.stem for p in Path(directory).glob("*.json")) if directory is not None else []
    return sorted(PRESETS) + [s for s in saved if s not in PRESETS]


def describe_preset(preset: str, model: str, directory=None) -> str:
    """One paragraph: what ``preset`` trains as ``model`` (before overrides); an unknown preset is its sentence."""
    try:
        base = load_preset(preset, directory)
        cfg = base.with_overrides({"model": model}).resolved()
    except UserError as exc:
        return str(exc)
    spec = get_spec(cfg.model)
    length = f"{cfg.max_iters} iterations" if cfg.max_iters else f"{cfg.n_epochs} + {cfg.n_epochs_decay} epochs"
    extra = f", relativistic D {cfg.relativistic}" if cfg.relativistic != "none" else ""
    if spec.paired_repeats_apply:
        extra += (f", paired_repeats {cfg.paired_repeats} (each paired sample {cfg.paired_repeats}x per epoch)"
                  if cfg.paired_repeats else ", paired_repeats 0 (paired samples repeated to match the unpaired count)")
    meant = (f" This preset is written for {base.model}: choose that model to train it as intended."
             if base.model not in (model, TrainConfig.model) else "")
    return (f"Preset `{preset}` as {cfg.model} (before overrides): {cfg.image_size}² (load {cfg.load_size or cfg.image_size}), ngf {cfg.ngf}, "
            f"ndf {cfg.ndf}, {spec.describe_networks(cfg)}, batch {cfg.batch_size}, lr {cfg.lr:g}, {length}{extra}; checkpoint every "
            f"{cfg.save_every}, samples every {cfg.sample_every}, device {cfg.device}.{meant}")
