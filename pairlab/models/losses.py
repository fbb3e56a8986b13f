"""GAN losses, the masked L1 of the hybrid objective, the image pool and the learning-rate schedule.

Everything here is a small pure piece that the tests check against hand-computed values.
"""
from __future__ import annotations

import random

import torch
from torch import nn
import torch.nn.functional as F


class GANLoss(nn.Module):
    """The reference's GANLoss: 'lsgan' is MSE to 1 (real) / 0 (fake) targets (CycleGAN),
    'vanilla' is binary cross-entropy on logits (pix2pix). Targets are broadcast to the patch map."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"unknown GAN mode {mode!r}")
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


def relativistic_d_loss(real: torch.Tensor, fake: torch.Tensor, mode: str) -> torch.Tensor:
    """Discriminator loss of a relativistic GAN, on raw (non-transformed) outputs C(.).

    'rsgan' is paper 002 Eq. (1): maximise log sigmoid(C(y) - C(y_hat)), i.e. BCE(C(y) - C(y_hat), 1), with
        each real output paired with the fake output at the same place (sample and patch) and the mean taken
        over all of them. Not halved: Eq. (1) is one term.
    'ragan' is the relativistic *average* standard GAN (RaSGAN, Jolicoeur-Martineau 2018, paper 002's ref. [10]):
        BCE(C(y) - E C(y_hat), 1) + BCE(C(y_hat) - E C(y), 0), the expectations over the whole batch and patch
        map, halved like the reference D losses.
    'ralsgan' is the relativistic *average* least-squares GAN (Jolicoeur-Martineau 2018):
        E_y[(C(y) - E C(y_hat) - 1)^2] + E_yhat[(C(y_hat) - E C(y) + 1)^2], halved like the reference D losses.
    """
    if mode == "rsgan":
        diff = real - fake
        return F.binary_cross_entropy_with_logits(diff, torch.ones_like(diff))
    if mode == "ragan":
        real_vs, fake_vs = real - fake.mean(), fake - real.mean()
        return 0.5 * (F.binary_cross_entropy_with_logits(real_vs, torch.ones_like(real_vs))
                      + F.binary_cross_entropy_with_logits(fake_vs, torch.zeros_like(fake_vs)))
    if mode == "ralsgan":
        return 0.5 * (((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean())
    raise ValueError(f"unknown relativistic mode {mode!r}")


def relativistic_g_loss(real: torch.Tensor, fake: torch.Tensor, mode: str) -> torch.Tensor:
    """Generator side: the same expressions with real and fake swapped (paper 002 Eq. (2)).
    Gradients also flow through C(y), which pushes real samples to look *less* real."""
    return relativistic_d_loss(fake, real, mode)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error counted only on samples whose mask is 1, divided by the batch size.

    Dividing by the batch size (not by the number of paired samples) makes a paired sample weigh the
    same whether it arrives in a batch of 1 or among unpaired ones, so balancing copies behave alike.
    With no paired sample in the batch the loss is exactly zero (and has a zero gradient).
    """
    per_sample = (pred - target).abs().flatten(1).mean(1)
    return (per_sample * mask.to(per_sample.dtype)).sum() / pred.shape[0]


class ImagePool:
    """The reference's history of generated images (Shrivastava et al.), with its own RNG so that
    a checkpoint can store and restore it exactly.

    The first ``pool_size`` images are stored and returned unchanged. After that, each incoming image is,
    with probability 1/2, swapped with a random stored one (the stored one is returned), else returned as is.
    """

    def __init__(self, pool_size: int, seed: int = 0):
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                slot = self.rng.randint(0, self.pool_size - 1)
                out.append(self.images[slot])
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        # Plain types only, so checkpoints load with torch.load(weights_only=True).
        return {"images": [img.cpu() for img in self.images], "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict, device) -> None:
        self.images = [img.to(device) for img in state["images"]]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def linear_decay(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The reference 'linear' policy (epoch_count 1), as a multiplier of the initial lr at 0-based ``epoch``:
    1 for the first n_epochs, then falling linearly by 1/(n_epochs_decay + 1) per epoch, reaching 0 just after
    the last epoch (n_epochs + n_epochs_decay)."""
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))
