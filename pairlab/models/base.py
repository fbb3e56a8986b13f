"""What every model kind shares: its networks, optimizers, lr schedulers, image pools and their state.

A model kind is one class (see ``pairlab.models.MODELS``) that builds its networks from a resolved
``TrainConfig`` and implements ``train_step(batch) -> loss tensors`` and ``translate(x, direction)``;
``optimize(batch)`` is ``train_step`` with the losses read back as floats.

Speed paths (CUDA only, so CPU numerics and exact CPU resume are untouched):
  - networks and batches in channels_last memory format;
  - network forwards under ``torch.autocast("cuda", dtype=torch.bfloat16)`` (where the GPU supports bf16), with
    every network output cast back to fp32, so GAN losses, L1 terms and the image pools are fp32;
  - ``train_step`` returns detached loss tensors and never reads a value back, so a step queues GPU work without
    waiting for it; the training loop reads the losses only at its log steps.
Adam is the fused kernel on CPU and CUDA (one pass over the parameters instead of a dozen).
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from .losses import ImagePool, linear_decay


class BaseModel:
    #: The kind's torch-free description (``pairlab.models.spec``); name, data_mode, defaults and directions
    #: below are read from it by each kind.
    spec = None
    name = "base"
    #: How the training data pairs A and B: "unaligned" (CycleGAN), "aligned" (pix2pix) or "hybrid".
    data_mode = "unaligned"
    #: Values for the config fields a user left as None (they depend on the model kind).
    defaults: dict = {}
    #: Directions ``translate`` understands.
    directions: tuple = ("AtoB",)

    def __init__(self, cfg, device: torch.device):
        self.cfg = cfg
        self.device = torch.device(device)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.pools: dict[str, ImagePool] = {}
        cuda = self.device.type == "cuda"
        #: bf16 autocast for network forwards (CUDA with bf16 support only).
        self.amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None
        #: channels_last activations and weights (CUDA only: on CPU oneDNN is faster with NCHW here).
        self.memory_format = torch.channels_last if cuda else torch.contiguous_format

    # ----- building blocks -----------------------------------------------------------------------
    def _adam(self, *nets: nn.Module) -> torch.optim.Optimizer:
        params = [p for net in nets for p in net.parameters()]
        fused = True if self.device.type in ("cpu", "cuda") else None
        return torch.optim.Adam(params, lr=self.cfg.lr, betas=(self.cfg.beta1, 0.999), fused=fused)

    def _place(self, net: nn.Module) -> nn.Module:
        """Move a freshly initialised network to the device (channels_last there on CUDA)."""
        net = net.to(self.device)
        if self.memory_format is torch.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net

    def autocast(self):
        """The mixed-precision context of network forwards: bf16 autocast on CUDA, nothing elsewhere."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """net(x) under the model's autocast, returned in fp32 (losses and image pools stay fp32)."""
        if self.amp_dtype is None:
            return net(x)
        with self.autocast():
            y = net(x)
        return y.float()

    def optimize(self, batch: dict) -> dict[str, float]:
        """One optimisation step; the losses as Python floats (this waits for the device)."""
        return {k: float(v) for k, v in self.train_step(batch).items()}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One optimisation step; the losses as detached 0-d tensors on the device (no host synchronisation)."""
        raise NotImplementedError

    @staticmethod
    def set_requires_grad(nets, flag: bool) -> None:
        # Freezing D while G steps saves computing gradients nobody uses.
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    def setup_schedule(self, total_iters: int) -> None:
        """Constant lr for n_epochs, then linear decay over n_epochs_decay (the reference 'linear' policy).

        The schedule is stepped every iteration; its epoch at iteration i is i * E // total_iters with
        E = n_epochs + n_epochs_decay. Without max_iters, total_iters = E * iterations-per-epoch, so this
        is exactly the data epoch; with max_iters the same schedule is compressed into max_iters iterations.
        """
        cfg = self.cfg
        n_sched = cfg.n_epochs + cfg.n_epochs_decay

        def factor(it: int) -> float:
            return linear_decay(it * n_sched // max(1, total_iters), cfg.n_epochs, cfg.n_epochs_decay)

        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in self.optimizers.items()
        }

    def step_schedule(self) -> None:
        for sched in self.schedulers.values():
            sched.step()

    @property
    def lr(self) -> float:
        return next(iter(self.optimizers.values())).param_groups[0]["lr"]

    def to_device(self, batch: dict) -> dict:
        """A batch's tensors on the model's device (no-op for those already there); images channels_last on CUDA."""
        out = {}
        for k, v in batch.items():
            if torch.is_tensor(v):
                v = v.to(self.device, non_blocking=True)
                if v.dim() == 4 and self.memory_format is torch.channels_last:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    # ----- inference -----------------------------------------------------------------------------
    @contextmanager
    def _quiet_rng(self, seed: int = 0):
        """Run inference without touching the training RNG streams, so sampling never changes a run."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        raise NotImplementedError

    def sample_rows(self, a: torch.Tensor, b: torch.Tensor, b_of_a: torch.Tensor | None) -> list[list[torch.Tensor]]:
        """Rows of images (each 3xHxW in [-1, 1]) for the periodic sample grid."""
        raise NotImplementedError

    # ----- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "pools": {k: v.state_dict() for k, v in self.pools.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        for k, pool in self.pools.items():
            pool.load_state_dict(state["pools"][k], self.device)

    def load_compatible_nets(self, nets_state: dict) -> list[str]:
        """Transfer: copy every network whose name and tensor shapes match; returns the names copied."""
        loaded = []
        for name, net in self.nets.items():
            src = nets_state.get(name)
            if src is None:
                continue
            own = net.state_dict()
            if set(src) == set(own) and all(src[k].shape == own[k].shape for k in own):
                net.load_state_dict(src)
                loaded.append(name)
        return loaded

    def parameter_counts(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in v.parameters()) for k, v in self.nets.items()}
