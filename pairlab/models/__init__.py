"""Models: networks, losses and one class per model kind, registered by name.

    MODELS["cyclegan"]  vanilla CycleGAN (paper 000 appendix), optional implicit-pair loss (not in paper 000)
    MODELS["pix2pix"]   vanilla pix2pix on explicit pairs
    MODELS["hybrid"]    paired + unpaired training (paper 002)
"""
from .cycle_gan import CycleGANModel
from .hybrid import HybridModel
from .pix2pix import Pix2PixModel

MODELS = {
    CycleGANModel.name: CycleGANModel,
    Pix2PixModel.name: Pix2PixModel,
    HybridModel.name: HybridModel,
}

__all__ = ["MODELS", "CycleGANModel", "Pix2PixModel", "HybridModel"]
