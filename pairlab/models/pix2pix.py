"""Pix2Pix as in paper 000 (vanilla): U-Net generator with batch norm and dropout 0.5, conditional 70x70
PatchGAN on (A, B) concatenated, vanilla GAN loss (BCE on logits), L1 weight 100. Trains on explicit pairs.

The update order follows the reference ``pix2pix_model.py``: D steps first, then G.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import BaseModel
from .losses import GANLoss
from .networks import NLayerDiscriminator, UnetGenerator, init_weights, unet_num_downs
from .spec import PIX2PIX


class Pix2PixModel(BaseModel):
    """Paired translation A -> B.

    Networks: G (U-Net with num_downs = log2(image_size): 6 at 64, 7 at 128, 8 at 256), D (6-channel input).
    Generator loss = lambda_gan * GAN(D(a, G(a)), real) + lambda_l1 * |G(a) - b|_1.
    Discriminator loss = (GAN(D(a, b), real) + GAN(D(a, G(a)), fake)) / 2.
    """

    spec = PIX2PIX
    name = spec.name
    data_mode = spec.data_mode
    defaults = spec.defaults  # the model kind's defaults live in its spec (pairlab.models.spec)
    directions = spec.directions

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        gen = UnetGenerator(3, 3, unet_num_downs(cfg.image_size), cfg.ngf, norm="batch", use_dropout=True)
        dis = NLayerDiscriminator(6, cfg.ndf, n_layers=3, norm="batch")
        self.nets = {
            "G": self._place(init_weights(gen, cfg.init_gain)),
            "D": self._place(init_weights(dis, cfg.init_gain)),
        }
        self.optimizers = {"G": self._adam(self.nets["G"]), "D": self._adam(self.nets["D"])}
        self.gan_loss = GANLoss("vanilla")

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        batch = self.to_device(batch)
        real_A, real_B = batch["A"], batch["B"]
        G, D = self.nets["G"], self.nets["D"]
        run = self.run
        fake_B = run(G, real_A)

        # Discriminator on (input, output) pairs: conditioning on A is what makes it a cGAN.
        self.set_requires_grad([D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_D_fake = self.gan_loss(run(D, torch.cat([real_A, fake_B.detach()], 1)), False)
        loss_D_real = self.gan_loss(run(D, torch.cat([real_A, real_B], 1)), True)
        loss_D = 0.5 * (loss_D_fake + loss_D_real)
        loss_D.backward()
        self.optimizers["D"].step()

        self.set_requires_grad([D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_G_GAN = cfg.lambda_gan * self.gan_loss(run(D, torch.cat([real_A, fake_B], 1)), True)
        loss_G_L1 = F.l1_loss(fake_B, real_B) * cfg.lambda_l1
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.optimizers["G"].step()
        losses = {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1, "G": loss_G, "D_real": loss_D_real, "D_fake": loss_D_fake,
                  "D": loss_D}
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """As in the pix2pix paper, inference runs like training: dropout on and batch statistics.

        The batch-norm running statistics are restored afterwards and the dropout noise comes from a fixed,
        separate RNG stream, so translating never changes the model or the training run.
        """
        if direction != "AtoB":
            raise ValueError("pix2pix only translates A to B")
        G = self.nets["G"]
        buffers = {k: v.clone() for k, v in G.named_buffers()}
        was_training = G.training
        G.train()
        try:
            with self._quiet_rng():
                return G(x.to(self.device))
        finally:
            G.train(was_training)
            for k, v in G.named_buffers():
                v.copy_(buffers[k])

    @torch.no_grad()
    def sample_rows(self, a, b, b_of_a=None):
        """input | translated | ground truth (when the test pair is known, else blank)."""
        if not len(a):
            return []
        fake_b = self.translate(a)
        rows = []
        for i in range(len(a)):
            target = b_of_a[i] if b_of_a is not None and b_of_a[i] is not None else torch.full_like(a[i], -1.0)
            rows.append([a[i], fake_b[i], target])
        return rows
