"""Models: networks, losses and one class per model kind, registered by name.

    MODELS["cyclegan"]  vanilla CycleGAN (paper 000 appendix), optional implicit-pair loss (not in paper 000)
    MODELS["pix2pix"]   vanilla pix2pix on explicit pairs
    MODELS["hybrid"]    paired + unpaired training (paper 002)

The model classes need torch and are imported on first use (``from pairlab.models import MODELS``), so the
torch-free model specs (``pairlab.models.spec``: SPECS, get_spec, MODEL_NAMES) import without it.
"""
from .spec import MODEL_NAMES, SPECS, ModelSpec, find_spec, get_spec

_CLASSES = {"CycleGANModel": ".cycle_gan", "Pix2PixModel": ".pix2pix", "HybridModel": ".hybrid"}


def __getattr__(name):
    import importlib

    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name], __name__), name)
    if name == "MODELS":
        classes = [__getattr__(c) for c in _CLASSES]
        models = {cls.name: cls for cls in classes}
        globals()["MODELS"] = {n: models[n] for n in SPECS}  # in the specs' order
        return globals()["MODELS"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MODELS", "CycleGANModel", "Pix2PixModel", "HybridModel", "MODEL_NAMES", "SPECS", "ModelSpec",
           "find_spec", "get_spec"]
