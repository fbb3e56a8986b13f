"""Several seeds of one CycleGAN configuration trained in one process as one computation (a sweep's many small runs).

``train_seeds(composition, run_dirs, cfgs)`` trains k configs that differ only in their seed, one run folder each,
as one batched computation: the k copies of each network become one network whose every convolution has
``groups=k`` (the seeds' channels side by side: seed i owns channels [i*C, (i+1)*C) of every layer), so one
forward / backward / Adam step advances all k runs. Nothing mixes the seeds:

  - a grouped convolution is k independent convolutions; instance norm (no affine, no running statistics),
    reflection padding, ReLU / LeakyReLU / tanh and the residual additions are per channel;
  - each seed's losses are computed on its own channels with the model's own loss code, and the total that is
    back-propagated is the sum of the seeds' losses, whose gradient with respect to seed i's (disjoint) weights
    is exactly the gradient of seed i's loss;
  - Adam is elementwise, so one fused Adam over the stacked tensors is k Adams with the same lr schedule (the
    configs are the same but for the seed, so the schedules are too);
  - each seed keeps what a single run of it has: its seeded init (each seed's model is built exactly as
    ``loop.train`` builds it, then its weights are stacked), its own data stream (``TrainData`` is a pure function
    of (seed, epoch, index)), its own image pools (their own RNGs) and its own RNG state in the checkpoints.

So each seed's losses and weights are a single run's up to floating-point rounding (grouped convolutions sum in
another order; ``tests/test_multiseed.py`` checks it). Each run folder is a normal one written through
``pairlab.train.run.Run``: config, run.json, status, losses.jsonl, samples, log and full checkpoints (for
``checkpoint.load_model``; ``loop.train(..., resume=True)`` continues a seed alone from one).

Limits: CPU only (GPU runs already share a GPU through its slots), the cyclegan and hybrid kinds (ResNet
generator, PatchGAN, instance norm, no dropout), fresh run folders only (no resume of the group), and the group
lives and dies together: if one seed's loss stops being finite, every seed of the group ends failed.

Why: on a small CPU one 64x64 ResNet-9 step of batch 1 keeps a core only partly busy (small GEMMs, one
Python-dispatched op after another); k seeds in one grouped step do k times the work per op. ``bench sweep``
(``pairlab.train.bench.bench_sweep``) prints the figures.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..errors import UserError
from ..models import MODELS
from ..models.cycle_gan import CycleGANModel
from ..models.losses import relativistic_d_loss, relativistic_g_loss
from . import checkpoint as ckpt
from .config import TrainConfig
from .data import TrainData
from .device import describe, pick_device
from .loop import RunLog, _restore_torch, _save_grid, _seed_everything, _settle_config, _setup_torch, record_end
from .run import Run

#: Modules without parameters or state that act per channel (or per element), shared as they are.
_PER_CHANNEL = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.ReflectionPad2d, nn.Identity)


# ----- grouped networks ------------------------------------------------------------------------------------
def grouped(nets: list[nn.Module]) -> nn.Module:
    """One network computing the k networks ``nets`` (same architecture) side by side on stacked channels.

    Input: the k inputs concatenated along channels (N x k*C x H x W); output likewise. The weights are copies
    of the given networks' (``split_into`` writes them back)."""
    first, k = nets[0], len(nets)
    if isinstance(first, nn.ConvTranspose2d) or isinstance(first, nn.Conv2d):
        if first.groups != 1 or first.padding_mode != "zeros":
            raise UserError("Batched seeds need plain convolutions (groups 1, zero padding).")
        kw = dict(stride=first.stride, padding=first.padding, dilation=first.dilation, groups=k,
                  bias=first.bias is not None)
        if isinstance(first, nn.ConvTranspose2d):
            out = nn.ConvTranspose2d(first.in_channels * k, first.out_channels * k, first.kernel_size,
                                     output_padding=first.output_padding, **kw)
        else:
            out = nn.Conv2d(first.in_channels * k, first.out_channels * k, first.kernel_size, **kw)
        out = out.to(first.weight.device, first.weight.dtype)
        with torch.no_grad():  # weight dim 0 is out (Conv2d) or in (ConvTranspose2d) channels: both stack there
            out.weight.copy_(torch.cat([n.weight for n in nets], 0))
            if out.bias is not None:
                out.bias.copy_(torch.cat([n.bias for n in nets], 0))
        return out
    if isinstance(first, nn.InstanceNorm2d):
        if first.affine or first.track_running_stats:
            raise UserError("Batched seeds need instance norm without affine parameters or running statistics.")
        return nn.InstanceNorm2d(first.num_features * k, eps=first.eps, affine=False, track_running_stats=False)
    if isinstance(first, _PER_CHANNEL):
        return copy.deepcopy(first)
    children = list(first.named_children())
    if not children or list(first.parameters(recurse=False)) or list(first.buffers(recurse=False)):
        raise UserError(f"Batched seeds cannot stack a {type(first).__name__} layer.")
    out = copy.copy(first)  # the container's own forward (Sequential, ResnetBlock, the generator), new children
    out._modules = dict(first._modules)
    for name, _ in children:
        out._modules[name] = grouped([getattr(n, name) for n in nets])
    return out


def split_into(group: nn.Module, nets: list[nn.Module]) -> None:
    """Copy the grouped network's weights back into the k separate networks (seed i: chunk i of dim 0)."""
    k = len(nets)
    own = dict(group.named_parameters())
    with torch.no_grad():
        for i, net in enumerate(nets):
            for name, p in net.named_parameters():
                p.copy_(own[name].chunk(k, 0)[i])


def _split_optimizer(state: dict, k: int, i: int) -> dict:
    """Seed i's part of a grouped optimizer's state dict (Adam: exp_avg / exp_avg_sq chunked; step shared)."""
    out = {"param_groups": copy.deepcopy(state["param_groups"]), "state": {}}
    for idx, entry in state["state"].items():
        out["state"][idx] = {key: (v.chunk(k, 0)[i].clone() if torch.is_tensor(v) and v.dim() > 0 else
                                   (v.clone() if torch.is_tensor(v) else v)) for key, v in entry.items()}
    return out


class SeedGroup:
    """k CycleGAN-family models (built as single runs) trained as one grouped computation."""

    def __init__(self, models: list[CycleGANModel]):
        self.models, self.k = models, len(models)
        first = models[0]
        self.cfg = first.cfg
        self.nets = {name: grouped([m.nets[name] for m in models]) for name in ("G_A", "G_B", "D_A", "D_B")}
        fused = True if first.device.type in ("cpu", "cuda") else None
        adam = lambda *names: torch.optim.Adam([p for n in names for p in self.nets[n].parameters()],
                                               lr=self.cfg.lr, betas=(self.cfg.beta1, 0.999), fused=fused)
        self.optimizers = {"G": adam("G_A", "G_B"), "D": adam("D_A", "D_B")}
        # The seeds' lr schedule (the same function for all: the configs differ only in the seed).
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, first.schedulers[name].lr_lambdas[0])
                           for name, opt in self.optimizers.items()}

    def step_schedule(self) -> None:
        for sched in self.schedulers.values():
            sched.step()

    @property
    def lr(self) -> float:
        return self.optimizers["G"].param_groups[0]["lr"]

    def sync(self) -> None:
        """Write the group's weights, Adam states and schedules into the seeds' own models (for checkpoints and
        samples: each seed's ``model.state_dict()`` is then what its single run would save)."""
        for name, net in self.nets.items():
            split_into(net, [m.nets[name] for m in self.models])
        for i, m in enumerate(self.models):
            for name, opt in self.optimizers.items():
                m.optimizers[name].load_state_dict(_split_optimizer(opt.state_dict(), self.k, i))
                m.schedulers[name].load_state_dict(self.schedulers[name].state_dict())

    # The step of ``CycleGANModel.train_step``, term for term and in its order, per seed on its channels.
    def train_step(self, batches: list[dict]) -> list[dict[str, torch.Tensor]]:
        cfg, k, models = self.cfg, self.k, self.models
        batches = [m.to_device(b) for m, b in zip(models, batches)]
        cat = lambda xs: torch.cat(xs, 1)
        split = lambda y: y.chunk(k, 1)
        real_A, real_B = cat([b["A"] for b in batches]), cat([b["B"] for b in batches])
        rA, rB = split(real_A), split(real_B)
        G_A, G_B, D_A, D_B = (self.nets[n] for n in ("G_A", "G_B", "D_A", "D_B"))
        rel = cfg.relativistic != "none"

        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        fB, fA, recA, recB = split(fake_B), split(fake_A), split(rec_A), split(rec_B)

        CycleGANModel.set_requires_grad([D_A, D_B], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        if cfg.lambda_identity > 0:
            idt_A, idt_B = split(G_A(real_B)), split(G_B(real_A))
        pf_B, pf_A = split(D_A(fake_B)), split(D_B(fake_A))
        if rel:
            pr_B, pr_A = split(D_A(real_B)), split(D_B(real_A))
        all_terms, losses_G = [], []
        for i, m in enumerate(models):
            terms = {}
            if cfg.lambda_identity > 0:
                w = cfg.lambda_identity * cfg.lambda_cycle
                terms["idt_A"] = F.l1_loss(idt_A[i], rB[i]) * w
                terms["idt_B"] = F.l1_loss(idt_B[i], rA[i]) * w
            if rel:
                terms["G_A"] = cfg.lambda_gan * relativistic_g_loss(pr_B[i], pf_B[i], cfg.relativistic)
                terms["G_B"] = cfg.lambda_gan * relativistic_g_loss(pr_A[i], pf_A[i], cfg.relativistic)
            else:
                terms["G_A"] = cfg.lambda_gan * m.gan_loss(pf_B[i], True)
                terms["G_B"] = cfg.lambda_gan * m.gan_loss(pf_A[i], True)
            terms["cycle_A"] = F.l1_loss(recA[i], rA[i]) * cfg.lambda_cycle
            terms["cycle_B"] = F.l1_loss(recB[i], rB[i]) * cfg.lambda_cycle
            terms.update(m.extra_g_losses(batches[i], fA[i], fB[i]))
            all_terms.append(terms)
            losses_G.append(sum(terms.values()))
        sum(losses_G).backward()
        self.optimizers["G"].step()

        CycleGANModel.set_requires_grad([D_A, D_B], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        losses_D = {}
        for net, real, fakes, pool in ((D_A, real_B, fB, "fake_B"), (D_B, real_A, fA, "fake_A")):
            pooled = cat([m.pools[pool].query(f) for m, f in zip(models, fakes)])
            p_real, p_fake = split(net(real)), split(net(pooled.detach()))
            per_seed = [relativistic_d_loss(p_real[i], p_fake[i], cfg.relativistic) if rel else
                        0.5 * (m.gan_loss(p_real[i], True) + m.gan_loss(p_fake[i], False))
                        for i, m in enumerate(models)]
            sum(per_seed).backward()
            losses_D[net is D_A] = per_seed
        self.optimizers["D"].step()

        out = []
        for i in range(k):
            o = {key: v.detach() for key, v in all_terms[i].items()}
            o.update(G=losses_G[i].detach(), D_A=losses_D[True][i].detach(), D_B=losses_D[False][i].detach())
            out.append(o)
        return out


# ----- the batched loop ---------------------------------------------------------------------------------
def check_configs(cfgs: list[TrainConfig]) -> list[TrainConfig]:
    """The resolved configs, refused (one sentence) unless they differ only in their seed and can be batched."""
    cfgs = [c.resolved() for c in cfgs]
    if not cfgs:
        raise UserError("Batched seeds need at least one config.")
    base = cfgs[0].to_dict()
    for c in cfgs[1:]:
        if {k: v for k, v in c.to_dict().items() if k != "seed"} != {k: v for k, v in base.items() if k != "seed"}:
            raise UserError("Batched seeds need configs that differ only in their seed.")
    if len({c.seed for c in cfgs}) != len(cfgs):
        raise UserError("Batched seeds need distinct seeds.")
    if not issubclass(MODELS[cfgs[0].model], CycleGANModel):
        raise UserError(f"Batched seeds train the cyclegan and hybrid kinds, not {cfgs[0].model}.")
    if pick_device(cfgs[0].device).type != "cpu":
        raise UserError("Batched seeds train on the CPU only; on a GPU, queue the seeds as separate runs.")
    return cfgs


def train_seeds(composition_dir, run_dirs, cfgs: list[TrainConfig],
                progress: Callable[[int, dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None, echo: bool = False) -> list[dict]:
    """Train ``cfgs`` (the same settings but for the seed) into fresh ``run_dirs`` as one batched computation.

    Each run folder ends as ``loop.train`` would leave it (config, run.json, status, losses, samples,
    checkpoints, log). progress(i, status) is called for seed i at every logged iteration; should_stop() is
    polled after every iteration (then every seed saves a checkpoint and ends 'stopped', resumable alone with
    ``loop.train(..., resume=True)``). Returns the final status of each run.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) != len(cfgs):
        raise UserError("Batched seeds need one run folder per config.")
    cfgs = check_configs(cfgs)
    runs = [Run.create(d) for d in run_dirs]
    logs = [RunLog(r, echo) for r in runs]
    previous_torch = None
    try:
        cfgs = [_settle_config(r, c, resume=False) for r, c in zip(runs, cfgs)]
        device = pick_device(cfgs[0].device)
        previous_torch = _setup_torch(cfgs[0], device)
        datas, models, rngs = [], [], []
        for cfg in cfgs:  # each seed exactly as loop.train builds it: seed, data, model, in that order
            _seed_everything(cfg.seed)
            Model = MODELS[cfg.model]
            data = TrainData(composition_dir, cfg, Model.data_mode, device=device)
            model = Model(cfg, device)
            model.setup_schedule(cfg.max_iters or (cfg.n_epochs + cfg.n_epochs_decay) * data.iters_per_epoch())
            if cfg.init_from:
                source = ckpt.load_checkpoint(cfg.init_from)
                if not model.load_compatible_nets(source["model_state"]["nets"]):
                    raise UserError(f"{cfg.init_from} has no networks compatible with this {cfg.model} model.")
            # Training draws nothing from the global RNGs (data and pools have their own): this is the state a
            # single run's checkpoints store.
            rngs.append(ckpt.rng_state())
            datas.append(data)
            models.append(model)
        group = SeedGroup(models)
        cfg, data = cfgs[0], datas[0]
        per_epoch = data.iters_per_epoch()
        total = cfg.max_iters or (cfg.n_epochs + cfg.n_epochs_decay) * per_epoch
        k = len(cfgs)
        for i, (run, log, model) in enumerate(zip(runs, logs, models)):
            run.write_config(cfgs[i])
            run.reset_losses()
            run.write_info({
                "composition": str(Path(composition_dir).resolve()), "model": cfg.model,
                "pairlab_version": __version__, "torch_version": torch.__version__,
                "python": __import__("platform").python_version(), "device": describe(device),
                "created": time.time(), "parameters": model.parameter_counts(),
                "batched_seeds": [c.seed for c in cfgs],
            })
            if cfg.init_from:
                log(f"initialised networks from {cfg.init_from}")
            log(f"start {cfg.model} on {Path(composition_dir).name}: {data.length} samples per epoch, "
                f"{per_epoch} iterations per epoch, {total} iterations, device {describe(device)}; batched with "
                f"seeds {', '.join(str(c.seed) for c in cfgs)} in one process")
            if datas[i].note:
                log(datas[i].note)
        samples = [d.sample_images(cfg.n_samples) for d in datas]
        for run in runs:
            run.update_status(state="running", progress=0.0, iteration=0, total=total, epoch=0, eta_s=None,
                              its_per_s=None, error="", message="", device=describe(device))

        it, epoch, index = 0, 0, 0
        accums = [{"sums": {}, "count": 0} for _ in range(k)]
        pending: list[list[dict]] = [[] for _ in range(k)]
        last: list[dict] = [{} for _ in range(k)]

        def flush(i: int) -> None:
            if not pending[i]:
                return
            keys = [key for step in pending[i] for key in step]
            values = torch.stack([v.float() for step in pending[i] for v in step.values()]).tolist()
            for key, v in zip(keys, values):
                accums[i]["sums"][key] = accums[i]["sums"].get(key, 0.0) + v
            n_last = len(pending[i][-1])
            last[i] = dict(zip(keys[len(keys) - n_last:], values[len(values) - n_last:]))
            pending[i] = []

        def save() -> None:
            group.sync()
            for i, (run, model) in enumerate(zip(runs, models)):
                blob = {"format": ckpt.FORMAT, "model": cfg.model, "config": cfgs[i].to_dict(), "iteration": it,
                        "epoch": epoch, "index": index, "total": total, "accum": accums[i],
                        "model_state": model.state_dict(), "rng": rngs[i]}
                periodic = run.checkpoints_dir / f"iter_{it:06d}.pt"
                ckpt.save_atomic(blob, periodic)
                ckpt.copy_atomic(periodic, run.checkpoints_dir / "latest.pt")
                ckpt.prune(run.checkpoints_dir, cfg.keep_last, cfg.keep_every)

        def sample() -> None:
            group.sync()
            for run, model, (a, b, b_of_a) in zip(runs, models, samples):
                _save_grid(model.sample_rows(a, b, b_of_a), run.sample_path(it))

        session_start = interval_start = time.time()
        interval_it0 = 0
        stopped = False
        while it < total:
            if index >= data.length:
                epoch, index = epoch + 1, 0
            n = min(cfg.batch_size, data.length - index)
            step = group.train_step([d.batch(epoch, index, n) for d in datas])
            index += n
            for i in range(k):
                pending[i].append(step[i])
            group.step_schedule()
            it += 1
            for a in accums:
                a["count"] += 1
            stopped = bool(should_stop and should_stop())

            if it % cfg.log_every == 0 or it == total or stopped:
                now = time.time()
                speed = (it - interval_it0) / max(now - interval_start, 1e-9)
                session_speed = it / max(now - session_start, 1e-9)
                lines = []
                for i in range(k):
                    flush(i)
                    line = {"iter": it, "epoch": epoch, "lr": group.lr, "its_per_s": round(speed, 4), "time": now}
                    line.update({key: s / accums[i]["count"] for key, s in accums[i]["sums"].items()})
                    lines.append(line)
                    runs[i].append_losses(line)
                    accums[i] = {"sums": {}, "count": 0}
                interval_start, interval_it0 = now, it
                for i, line in enumerate(lines):
                    if not all(np.isfinite(v) for v in line.values()):
                        raise UserError(f"Training diverged at iteration {it} (a loss of seed {cfgs[i].seed} is "
                                        f"not finite); try a lower lr.")
                for i, run in enumerate(runs):
                    status = run.update_status(progress=it / total, iteration=it, epoch=epoch, its_per_s=speed,
                                               eta_s=(total - it) / max(session_speed, 1e-9))
                    if progress:
                        progress(i, dict(status, losses=last[i], lr=group.lr))
            if it % cfg.save_every == 0 or it == total or stopped:
                for i in range(k):
                    flush(i)
                save()
            if it % cfg.sample_every == 0 or it == total:
                sample()
            if stopped:
                break

        final_state = "stopped" if stopped and it < total else "done"
        finals = []
        for i, (run, log) in enumerate(zip(runs, logs)):
            log(f"{final_state} at iteration {it}/{total}")
            status = run.update_status(state=final_state, progress=it / total, iteration=it,
                                       eta_s=0 if final_state == "done" else None)
            if progress:
                progress(i, status)
            finals.append(status)
        return finals
    except BaseException as exc:
        for run, log in zip(runs, logs):
            record_end(run, log, exc)
        raise
    finally:
        if previous_torch is not None:
            _restore_torch(previous_torch)
