"""The performance paths of training: batches made on the device equal the lazy CPU ones, losses read back only at
log steps, the FLOP count of a step, and the training benchmark end to end (tiny sizes; no timing asserted)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pairlab.models import MODELS
from pairlab.train import data as data_mod
from pairlab.train import train
from pairlab.train.bench import bench_train, count_step_flops, format_report, matmul_peak
from pairlab.train.data import TrainData
from test_training import make_composition, tiny


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the training tests use: two OpenMP threads crawl when other processes share the cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def comp(tmp_path_factory):
    return make_composition(tmp_path_factory.mktemp("perf") / "toy", n_train=7)


def _same_batch(a: dict, b: dict, where: str) -> None:
    assert a.keys() == b.keys(), where
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, f"{where}: {k}"
            continue
        x, y = a[k].cpu(), b[k].cpu()
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y), f"{where}: {k}"


@pytest.mark.parametrize("model,mode,extra", [
    ("cyclegan", "unaligned", {"implicit_pair_loss": True}),
    ("hybrid", "hybrid", {"balance_copies": 2}),
    ("pix2pix", "aligned", {}),
])
def test_resident_batches_equal_lazy_batches(comp, model, mode, extra):
    # load 40 > crop 32, so crops and flips really vary; batch 3 leaves a partial last batch.
    cfg = tiny(model=model, load_size=40, batch_size=3, **extra).resolved()
    resident = TrainData(comp, cfg, mode, device="cpu")
    lazy = TrainData(comp, cfg, mode)
    assert resident.resident is not None and lazy.resident is None
    assert resident.resident["trainA"].dtype == torch.uint8
    assert resident.resident["trainA"].shape == (7, 3, 40, 40) and resident.resident["trainB"].shape == (7, 3, 40, 40)
    assert "decoded once into uint8 tensors on cpu" in resident.note
    flips = 0
    for epoch in (0, 3):
        plan = resident.plan(epoch)
        flips += int(plan["flip"].sum())
        for start in range(0, resident.length, 3):
            _same_batch(resident.batch(epoch, start, 3), lazy.batch(epoch, start, 3), f"{model} e{epoch} i{start}")
    assert flips > 0
    # The same (seed, epoch, index) gives the same batch from a fresh object, in any order of calls.
    again = TrainData(comp, cfg, mode, device="cpu")
    _same_batch(again.batch(3, 3, 3), resident.batch(3, 3, 3), "fresh")


def test_large_composition_falls_back_to_lazy_path(comp, monkeypatch):
    monkeypatch.setattr(data_mod, "RESIDENT_BYTES", 1000)
    cfg = tiny(load_size=40).resolved()
    d = TrainData(comp, cfg, "unaligned", device="cpu")
    assert d.resident is None and "decoded lazily on the CPU" in d.note and "budget" in d.note
    _same_batch(d.batch(1, 0, 2), TrainData(comp, cfg, "unaligned").lazy_batch(1, 0, 2), "fallback")


def test_train_step_returns_device_tensors_and_cpu_runs_fp32():
    cfg = tiny().resolved()
    model = MODELS["cyclegan"](cfg, "cpu")
    assert model.amp_dtype is None and model.memory_format is torch.contiguous_format  # CUDA-only speed paths
    assert all(g.get("fused") for opt in model.optimizers.values() for g in opt.param_groups)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    losses = model.train_step({"A": x, "B": x.flip(-1), "paired": torch.ones(1), "pair": None})
    assert losses and all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in losses.values())
    assert all(v.dtype == torch.float32 for v in losses.values())
    assert isinstance(model.optimize({"A": x, "B": x, "paired": torch.ones(1), "pair": None})["G"], float)


def test_losses_read_at_log_steps_average_the_same(comp, tmp_path):
    """Losses stay tensors between log steps; the logged means equal those of logging every step."""
    every = tmp_path / "every"
    train(comp, every, tiny(max_iters=8, log_every=1, save_every=3, sample_every=100))
    sparse = tmp_path / "sparse"
    train(comp, sparse, tiny(max_iters=8, log_every=4, save_every=3, sample_every=100))
    rows = [json.loads(line) for line in (every / "losses.jsonl").read_text().splitlines()]
    grouped = [json.loads(line) for line in (sparse / "losses.jsonl").read_text().splitlines()]
    assert [m["iter"] for m in grouped] == [4, 8]
    for g, chunk in zip(grouped, (rows[:4], rows[4:])):
        for key in ("G", "D_A", "cycle_A", "idt_B"):
            assert g[key] == pytest.approx(np.mean([m[key] for m in chunk]), rel=1e-12)
    assert "decoded once into uint8 tensors" in (sparse / "log.txt").read_text()


def _conv_macs(c_in, c_out, k, out_hw):
    return c_in * c_out * k * k * out_hw * out_hw


def test_flop_counter_matches_a_hand_count():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1))
    x = torch.randn(1, 3, 16, 16)
    macs = _conv_macs(3, 8, 3, 16) + _conv_macs(8, 16, 3, 8)
    with FlopCounterMode(display=False) as counter:
        net(x)
    assert counter.get_total_flops() == pytest.approx(2 * macs, rel=0.5)
    # Backward: both weight gradients, and the input gradient of the second layer only.
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    hand = 2 * macs + 2 * macs + 2 * _conv_macs(8, 16, 3, 8)
    assert counter.get_total_flops() == pytest.approx(hand, rel=0.5)


def test_step_flops_of_a_tiny_cyclegan_are_plausible():
    cfg = tiny().resolved()  # ngf = ndf = 8, 2 residual blocks, 32x32
    model = MODELS["cyclegan"](cfg, "cpu")
    model.setup_schedule(10)
    batch = {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32), "paired": torch.ones(1), "pair": None}
    flops = count_step_flops(model, batch)
    g = 8  # ngf = ndf
    gen = (_conv_macs(3, g, 7, 32) + _conv_macs(g, 2 * g, 3, 16) + _conv_macs(2 * g, 4 * g, 3, 8)  # c7s1, d, d
           + 2 * 2 * _conv_macs(4 * g, 4 * g, 3, 8)                                                # 2 blocks
           + _conv_macs(4 * g, 2 * g, 3, 8) + _conv_macs(2 * g, g, 3, 16)  # u, u: per input pixel
           + _conv_macs(g, 3, 7, 32))                                                              # c7s1-3
    dis = (_conv_macs(3, g, 4, 16) + _conv_macs(g, 2 * g, 4, 8) + _conv_macs(2 * g, 4 * g, 4, 4)
           + _conv_macs(4 * g, 8 * g, 4, 3) + _conv_macs(8 * g, 1, 4, 2))
    # Six generator passes and six discriminator passes (two in the G step, four in the D step), each a forward
    # plus a backward of about twice its cost; FLOPs are 2 x MACs.
    hand = 2 * (6 * gen * 3 + 6 * dis * 3)
    assert 0.5 * hand < flops < 2 * hand


def test_bench_train_runs_end_to_end():
    assert matmul_peak(torch.device("cpu"), n=256, repeats=3) > 0
    result = bench_train(device="cpu", warmup=1, iters=2, configs={"tiny@32": tiny(max_iters=0)}, peak_n=512)
    entry = result["devices"]["cpu"]
    case = entry["cases"]["tiny@32"]
    for key in ("s_per_iter", "its_per_s", "gflop_per_iter", "gflops", "fraction_of_peak", "peak_gflops",
                "peak_memory_mb", "load_avg"):
        assert key in case
    assert case["s_per_iter"] > 0 and case["gflop_per_iter"] > 0 and 0 < case["fraction_of_peak"]
    assert case["peak_memory_mb"] > 10 and entry["matmul_peak_gflops"] > 0
    assert case["its_per_s"] == pytest.approx(1 / case["s_per_iter"])
    text = format_report(result)
    assert "tiny@32" in text and "GFLOP/s" in text and "of peak" in text and "matmul peak" in text
