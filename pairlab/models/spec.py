"""What each model kind is, torch-free: the one place that knows the model-kind names.

A ``ModelSpec`` answers every question the rest of the lab asks about a kind (its label, which generator
translates which direction, whether it needs pairs, its default settings, its config checks, its plot colour),
so nothing outside ``pairlab.models`` compares model-kind strings: it asks ``get_spec(name).needs_pairs`` and so on.
The model classes (``pairlab.models.MODELS``, which need torch) read their ``name``, ``data_mode``,
``defaults`` and ``directions`` from here.

    SPECS["cyclegan"]  vanilla CycleGAN (paper 000 appendix)
    SPECS["pix2pix"]   vanilla pix2pix on explicit pairs
    SPECS["hybrid"]    paired + unpaired training (paper 002)
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Optional

from ..errors import UserError


def _no_check(cfg) -> Optional[str]:
    return None


def _unet_size(cfg) -> Optional[str]:
    """The U-Net halves the image log2(image_size) times: a power of two, at least 32."""
    size = cfg.image_size
    if size >= 32 and size & (size - 1) == 0:
        return None
    return f"pix2pix needs a power-of-two image_size of at least 32 (U-Net), got {size}."


@dataclass(frozen=True, eq=False)
class ModelSpec:
    #: The kind's name: the ``model`` setting, ``MODELS`` key and run folders' config.
    name: str
    #: How the UI and reports name it.
    label: str
    #: The short name in plot legends ("Pix2Pix outputs (run)").
    short_label: str
    #: direction ("AtoB" / "BtoA") -> the network in ``model.nets`` that translates it.
    generators: Mapping[str, str]
    #: How the training data pairs A and B: "unaligned" (CycleGAN), "aligned" (pix2pix) or "hybrid".
    data_mode: str
    #: Every training sample must have its pair (pix2pix): a composition without pairs cannot train it.
    needs_pairs: bool
    #: Known pairs are used when present (pix2pix: all of them; hybrid: the paired ones, with ``paired_repeats``).
    uses_pairs: bool
    #: Inference normalises with batch statistics (pix2pix's BatchNorm in train mode, as the reference test does),
    #: so test images are translated one at a time.
    batch_stats_inference: bool
    #: Values for the config fields left as None (they depend on the model kind).
    defaults: Mapping[str, object]
    #: Plot colour of its outputs (paper 000 Figure 9: Pix2Pix red, CycleGAN cyan); None: the next free colour.
    color: Optional[str]
    #: The networks in a few words, formatted with the resolved config as ``cfg`` (the training tab's summary).
    networks: str
    #: cfg -> a one-sentence problem with the config for this kind, or None (``TrainConfig.validate`` asks it).
    check: Callable[[object], Optional[str]] = _no_check

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions the kind can translate."""
        return tuple(self.generators)

    @property
    def paired_repeats_apply(self) -> bool:
        """Whether the ``paired_repeats`` setting means anything (hybrid: paired samples repeated per epoch)."""
        return self.data_mode == "hybrid"

    def generator(self, direction: str) -> str:
        """The name of the network that translates ``direction``."""
        if direction not in self.generators:
            raise UserError(f"{self.label} translates {' and '.join(self.directions)} only, not {direction}.")
        return self.generators[direction]

    def describe_networks(self, cfg) -> str:
        return self.networks.format(cfg=cfg)

    def check_config(self, cfg) -> Optional[str]:
        return self.check(cfg)


def _spec(**kw) -> ModelSpec:
    kw["generators"] = MappingProxyType(dict(kw["generators"]))
    kw["defaults"] = MappingProxyType(dict(kw["defaults"]))
    return ModelSpec(**kw)


CYCLEGAN = _spec(
    name="cyclegan", label="CycleGAN", short_label="CycleGAN",
    generators={"AtoB": "G_A", "BtoA": "G_B"}, data_mode="unaligned",
    needs_pairs=False, uses_pairs=False, batch_stats_inference=False,
    defaults={"lambda_identity": 0.5, "lambda_l1": 0.0, "pool_size": 50},
    color="#00bcd4", networks="ResNet G with {cfg.n_blocks} blocks")
PIX2PIX = _spec(
    name="pix2pix", label="Pix2Pix", short_label="Pix2Pix",
    generators={"AtoB": "G"}, data_mode="aligned",
    needs_pairs=True, uses_pairs=True, batch_stats_inference=True,
    defaults={"lambda_identity": 0.0, "lambda_l1": 100.0, "pool_size": 0},
    color="#e41a1c", networks="U-Net G", check=_unet_size)
HYBRID = _spec(
    name="hybrid", label="hybrid (paired + unpaired)", short_label="hybrid",
    generators={"AtoB": "G_A", "BtoA": "G_B"}, data_mode="hybrid",
    needs_pairs=False, uses_pairs=True, batch_stats_inference=False,
    defaults={"lambda_identity": 1.0, "lambda_l1": 150.0, "pool_size": 50},
    color=None, networks="ResNet G with {cfg.n_blocks} blocks")

#: Every model kind by name, in the order the UI and the CLI list them.
SPECS: Mapping[str, ModelSpec] = MappingProxyType({s.name: s for s in (CYCLEGAN, PIX2PIX, HYBRID)})
MODEL_NAMES: tuple[str, ...] = tuple(SPECS)
#: Config fields whose default depends on the model kind (they return to None when the model changes).
MODEL_DEPENDENT: tuple[str, ...] = tuple(dict.fromkeys(k for s in SPECS.values() for k in s.defaults))


def get_spec(name: str) -> ModelSpec:
    """The spec of a model kind; an unknown kind is a one-sentence UserError."""
    spec = SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UserError(f"Unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}.")
    return spec


def find_spec(name) -> Optional[ModelSpec]:
    """The spec of a model kind, or None for an unknown or missing one (e.g. a run folder read as it is)."""
    return SPECS.get(name) if isinstance(name, str) else None
