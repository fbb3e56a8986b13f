"""Hybrid paired + unpaired training (paper 002, Sec. 3.3-3.5): CycleGAN on every sample plus an L1
reconstruction loss on the samples whose pair is known."""
from __future__ import annotations

from .cycle_gan import CycleGANModel
from .losses import masked_l1
from .spec import HYBRID


class HybridModel(CycleGANModel):
    """CycleGAN networks and updates with paper 002's total loss (Eq. 6):

        L_total = l1 * L_GAN + l2 * L_cycle + l3 * L_idt + l4 * L_L1,   (l1, l2, l3, l4) = (1, 10, 10, 150)

    - L_GAN   (l1 = lambda_gan = 1): adversarial loss of both directions. Paper 002 uses the relativistic
      discriminator, Eq. (1)-(2), D_rel(y, y_hat) = sigmoid(C(y) - C(y_hat)): that is ``relativistic="rsgan"``;
      ``"ragan"`` and ``"ralsgan"`` are the relativistic-average variants (C(y) against the mean C(y_hat) of the
      batch, with the logistic or the least-squares loss), not used by the paper. All are optional; the model's
      default "none" keeps CycleGAN's least-squares loss, the ``paper-002`` preset uses "rsgan".
    - L_cycle (l2 = lambda_cycle = 10): |G_YX(G_XY(x)) - x|_1 + |G_XY(G_YX(y)) - y|_1, Eq. (3).
    - L_idt   (l3 = 10): |G_YX(x) - x|_1 + |G_XY(y) - y|_1, Eq. (4). In pairlab the identity weight is always
      lambda_identity x lambda_cycle (the reference convention), so the hybrid default lambda_identity = 1.0
      gives paper 002's absolute weight of 10 (vanilla CycleGAN's 0.5 gives 5).
    - L_L1    (l4 = lambda_l1 = 150): |G_XY(x) - y|_1 + |G_YX(y) - x|_1 on paired samples only, Eq. (5).
      In a batch it is averaged over the batch with unpaired samples counting zero (see ``masked_l1``).

    Balancing (Sec. 4.1.5): ``paired_repeats`` = k repeats each paired sample k times per epoch; 0 picks k so
    that the paired repeats match the unpaired samples in number, as the paper does (``paper-002`` preset).
    The preset ``paper-002`` also sets ``relativistic="rsgan"`` and the weights (1, 10, 10, 150).
    """

    spec = HYBRID
    name = spec.name
    data_mode = spec.data_mode
    defaults = spec.defaults  # the model kind's defaults live in its spec (pairlab.models.spec)
    directions = spec.directions

    def extra_g_losses(self, batch, fake_A, fake_B):
        cfg = self.cfg
        # For a paired sample the loader puts the pair of A in B, so B is G_A(A)'s target and A is G_B(B)'s.
        terms = {"L1": cfg.lambda_l1 * (masked_l1(fake_B, batch["B"], batch["paired"])
                                        + masked_l1(fake_A, batch["A"], batch["paired"]))}
        terms.update(super().extra_g_losses(batch, fake_A, fake_B))
        return terms
