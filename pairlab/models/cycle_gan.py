"""CycleGAN as in paper 000 (vanilla): two ResNet generators, two 70x70 PatchGANs, least-squares GAN loss,
image pools of 50, cycle weight 10, identity weight 0.5 x cycle weight, Adam 2e-4 / beta1 0.5.

The update order follows the reference ``cycle_gan_model.py``: both generators step first (discriminators
frozen), then both discriminators step on pooled fakes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import BaseModel
from .losses import GANLoss, ImagePool, masked_l1, relativistic_d_loss, relativistic_g_loss
from .networks import NLayerDiscriminator, ResnetGenerator, init_weights
from .spec import CYCLEGAN


class CycleGANModel(BaseModel):
    """Unpaired translation A <-> B.

    Networks: G_A (A -> B), G_B (B -> A), D_A (real B vs G_A(A)), D_B (real A vs G_B(B)); names as in the reference.

    Generator loss = lambda_gan * (GAN(G_A) + GAN(G_B))
                   + lambda_cycle * (|G_B(G_A(a)) - a|_1 + |G_A(G_B(b)) - b|_1)
                   + lambda_identity * lambda_cycle * (|G_A(b) - b|_1 + |G_B(a) - a|_1)
                   [+ lambda_imp * |G_A(a) - pair(a)|_1 on samples whose pair is known, when implicit_pair_loss]

    The identity weight is relative to the cycle weight, as in the reference (lambda_identity * lambda_A).

    ``implicit_pair_loss`` is NOT in paper 000: it is the L_imp = ||T_X(x) - G(x)||_1 (lambda 0.5) of the
    machine-written summary 001, offered as an optional variant; "G(x)" is the known pair of x in trainB.

    ``relativistic`` ("rsgan" / "ragan" / "ralsgan") swaps the least-squares GAN loss for a relativistic one; vanilla
    CycleGAN leaves it at "none".
    """

    spec = CYCLEGAN
    name = spec.name
    data_mode = spec.data_mode
    defaults = spec.defaults  # the model kind's defaults live in its spec (pairlab.models.spec)
    directions = spec.directions

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        gen = lambda: ResnetGenerator(3, 3, cfg.ngf, cfg.n_blocks, norm="instance", use_dropout=False)
        dis = lambda: NLayerDiscriminator(3, cfg.ndf, n_layers=3, norm="instance")
        # Built in a fixed order from the seeded torch RNG, so the initial weights are a function of the seed.
        self.nets = {
            "G_A": self._place(init_weights(gen(), cfg.init_gain)),
            "G_B": self._place(init_weights(gen(), cfg.init_gain)),
            "D_A": self._place(init_weights(dis(), cfg.init_gain)),
            "D_B": self._place(init_weights(dis(), cfg.init_gain)),
        }
        self.optimizers = {
            "G": self._adam(self.nets["G_A"], self.nets["G_B"]),
            "D": self._adam(self.nets["D_A"], self.nets["D_B"]),
        }
        self.pools = {
            "fake_A": ImagePool(cfg.pool_size, seed=cfg.seed * 1000 + 1),
            "fake_B": ImagePool(cfg.pool_size, seed=cfg.seed * 1000 + 2),
        }
        self.gan_loss = GANLoss("lsgan")

    # ----- losses --------------------------------------------------------------------------------
    def _g_adv(self, net_d, fake, real) -> torch.Tensor:
        if self.cfg.relativistic != "none":
            return relativistic_g_loss(self.run(net_d, real), self.run(net_d, fake), self.cfg.relativistic)
        return self.gan_loss(self.run(net_d, fake), True)

    def _d_loss(self, net_d, real, fake) -> torch.Tensor:
        """The reference's backward_D_basic: (real + fake) / 2 so D learns slower than G."""
        pred_real, pred_fake = self.run(net_d, real), self.run(net_d, fake.detach())
        if self.cfg.relativistic != "none":
            return relativistic_d_loss(pred_real, pred_fake, self.cfg.relativistic)
        return 0.5 * (self.gan_loss(pred_real, True) + self.gan_loss(pred_fake, False))

    def extra_g_losses(self, batch, fake_A, fake_B) -> dict[str, torch.Tensor]:
        """Hook for terms added to the generator loss (weighted already)."""
        cfg = self.cfg
        if cfg.implicit_pair_loss and batch.get("pair") is not None:
            return {"imp": cfg.lambda_imp * masked_l1(fake_B, batch["pair"], batch["paired"])}
        return {}

    # ----- one iteration -------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        batch = self.to_device(batch)
        real_A, real_B = batch["A"], batch["B"]
        G_A, G_B, D_A, D_B = (self.nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        run = self.run

        fake_B = run(G_A, real_A)
        rec_A = run(G_B, fake_B)
        fake_A = run(G_B, real_B)
        rec_B = run(G_A, fake_A)

        # Generators, with the discriminators frozen.
        self.set_requires_grad([D_A, D_B], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        terms = {}
        if cfg.lambda_identity > 0:
            w = cfg.lambda_identity * cfg.lambda_cycle
            terms["idt_A"] = F.l1_loss(run(G_A, real_B), real_B) * w
            terms["idt_B"] = F.l1_loss(run(G_B, real_A), real_A) * w
        terms["G_A"] = cfg.lambda_gan * self._g_adv(D_A, fake_B, real_B)
        terms["G_B"] = cfg.lambda_gan * self._g_adv(D_B, fake_A, real_A)
        terms["cycle_A"] = F.l1_loss(rec_A, real_A) * cfg.lambda_cycle
        terms["cycle_B"] = F.l1_loss(rec_B, real_B) * cfg.lambda_cycle
        terms.update(self.extra_g_losses(batch, fake_A, fake_B))
        loss_G = sum(terms.values())
        loss_G.backward()
        self.optimizers["G"].step()

        # Discriminators, on a history of fakes (the image pool) rather than only the newest ones.
        self.set_requires_grad([D_A, D_B], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_D_A = self._d_loss(D_A, real_B, self.pools["fake_B"].query(fake_B))
        loss_D_A.backward()
        loss_D_B = self._d_loss(D_B, real_A, self.pools["fake_A"].query(fake_A))
        loss_D_B.backward()
        self.optimizers["D"].step()

        out = {k: v.detach() for k, v in terms.items()}
        out.update(G=loss_G.detach(), D_A=loss_D_A.detach(), D_B=loss_D_B.detach())
        return out

    # ----- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Instance norm keeps no running statistics, so train and eval mode give the same output."""
        net = self.nets["G_A" if direction == "AtoB" else "G_B"]
        return net(x.to(self.device))

    @torch.no_grad()
    def sample_rows(self, a, b, b_of_a=None):
        """input | translated | reconstructed, for test A images then test B images."""
        rows = []
        if len(a):
            fake_b = self.translate(a, "AtoB")
            rec_a = self.translate(fake_b, "BtoA")
            rows += [[a[i], fake_b[i], rec_a[i]] for i in range(len(a))]
        if len(b):
            fake_a = self.translate(b, "BtoA")
            rec_b = self.translate(fake_a, "AtoB")
            rows += [[b[i], fake_a[i], rec_b[i]] for i in range(len(b))]
        return rows
