"""Batched seeds (pairlab.train.multiseed): k seeds of one config trained as one grouped computation end exactly
as each seed trained alone, up to floating-point rounding: the same losses, the same final weights, normal run
folders. Tiny networks (ngf 4, 1 block) on 32x32 images, deterministic CPU.

The run-for-run comparisons train in float64 (networks, batches, Adam): in float32 the rounding of a grouped
convolution's other summation order is ~1e-7, but a gradient that is zero in exact arithmetic (the bias of a
convolution followed by instance norm) is then pure rounding noise, which Adam normalises into steps of about
lr, and a GAN spreads those over every loss within a few iterations. In float64 that noise stays ~1e-16, below
Adam's eps, so the batched and the single run agree to ~1e-10 and a real difference (a wrong data stream, pool,
init or schedule) could not hide in the tolerance. A float32 test checks the first iterations.
"""
from __future__ import annotations

import json

import pytest
import torch

from pairlab.errors import UserError
from pairlab.train import TrainConfig, train
from pairlab.train.checkpoint import load_checkpoint, load_model
from pairlab.train.data import TrainData
from pairlab.train.multiseed import grouped, split_into, train_seeds
from pairlab.models.networks import NLayerDiscriminator, ResnetGenerator, init_weights

from test_training import make_composition

SEEDS = (0, 1, 2)


def tiny(**kw) -> TrainConfig:
    base = dict(image_size=32, load_size=36, ngf=4, ndf=4, n_blocks=1, max_iters=8, n_epochs=1, n_epochs_decay=1,
                save_every=4, sample_every=8, log_every=2, deterministic=True, threads=1, n_samples=2, pool_size=3,
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def float64(monkeypatch):
    """Networks built in float64 and batches / sample images converted to float64, for the test's duration."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    batch, sample_images = TrainData.batch, TrainData.sample_images
    monkeypatch.setattr(TrainData, "batch", lambda self, *a: {k: v.double() if torch.is_tensor(v) else v
                                                              for k, v in batch(self, *a).items()})
    monkeypatch.setattr(TrainData, "sample_images", lambda self, n: tuple(
        x.double() if torch.is_tensor(x) else [y if y is None else y.double() for y in x]
        for x in sample_images(self, n)))
    yield
    torch.set_default_dtype(previous)


def losses(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


def test_grouped_network_is_the_networks_side_by_side():
    torch.manual_seed(0)
    for make in (lambda: ResnetGenerator(3, 3, 4, 1), lambda: NLayerDiscriminator(3, 4, 3)):
        nets = [init_weights(make(), 0.2) for _ in range(3)]
        group = grouped(nets)
        x = [torch.randn(2, 3, 32, 32) for _ in nets]
        y = group(torch.cat(x, 1)).chunk(3, 1)
        for net, xi, yi in zip(nets, x, y):
            torch.testing.assert_close(yi, net(xi), rtol=1e-4, atol=2e-5)  # rounding: another summation order
        copies = [make() for _ in nets]
        split_into(group, copies)
        for a, b in zip(nets, copies):
            for (name, p), q in zip(a.named_parameters(), b.parameters()):
                assert torch.equal(p, q), name


@pytest.mark.parametrize("kw", [{}, {"model": "hybrid", "relativistic": "rsgan", "batch_size": 2}],
                         ids=["cyclegan", "hybrid-rsgan-batch2"])
def test_each_seed_trains_as_alone(tmp_path, kw, float64):
    comp = make_composition(tmp_path / "toy")
    cfgs = [tiny(seed=s, **kw) for s in SEEDS]
    dirs = [tmp_path / f"batched-{s}" for s in SEEDS]
    finals = train_seeds(comp, dirs, cfgs)
    assert [f["state"] for f in finals] == ["done"] * 3 and all(f["iteration"] == 8 for f in finals)
    for cfg, batched in zip(cfgs, dirs):
        alone = tmp_path / f"alone-{cfg.seed}"
        assert train(comp, alone, cfg)["state"] == "done"
        # Losses: the same lines (iteration, epoch, lr exactly; every loss up to rounding).
        la, lb = losses(alone), losses(batched)
        assert [l["iter"] for l in la] == [l["iter"] for l in lb] == [2, 4, 6, 8]
        for x, y in zip(la, lb):
            assert x.keys() == y.keys()
            assert x["epoch"] == y["epoch"] and x["lr"] == y["lr"]
            for key in set(x) - {"iter", "epoch", "lr", "its_per_s", "time"}:
                assert y[key] == pytest.approx(x[key], rel=1e-9, abs=1e-12), (cfg.seed, x["iter"], key)
        # Final checkpoints: the same weights, Adam states, schedules, pools and RNG state.
        ca, cb = load_checkpoint(alone / "checkpoints" / "latest.pt"), load_checkpoint(batched / "checkpoints" / "latest.pt")
        assert (ca["iteration"], ca["epoch"], ca["index"], ca["config"]) == (cb["iteration"], cb["epoch"], cb["index"], cb["config"])
        for name, net in ca["model_state"]["nets"].items():
            for key, w in net.items():
                assert cb["model_state"]["nets"][name][key].dtype == torch.float64
                assert torch.allclose(cb["model_state"]["nets"][name][key], w, rtol=1e-8, atol=1e-8), (cfg.seed, name, key)
        for name, opt in ca["model_state"]["optimizers"].items():
            for idx, st in opt["state"].items():
                for key, v in st.items():
                    assert torch.allclose(cb["model_state"]["optimizers"][name]["state"][idx][key], v,
                                          rtol=1e-6, atol=1e-12), (cfg.seed, name, idx, key)
        assert ca["model_state"]["schedulers"] == cb["model_state"]["schedulers"]
        for name, pool in ca["model_state"]["pools"].items():
            other = cb["model_state"]["pools"][name]
            assert pool["rng"] == other["rng"] and len(pool["images"]) == len(other["images"])
        assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])
        # A normal run folder: the model loads, samples and status are there.
        model, info = load_model(batched, device="cpu")
        assert info["iteration"] == 8 and model.translate(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
        # every sample of the batched run is one the run alone wrote too (alone also writes an early sample at the
        # first log step when sample_every is far off; the batched trainer does not)
        batched_samples = {p.name for p in (batched / "samples").iterdir()}
        assert batched_samples and batched_samples <= {p.name for p in (alone / "samples").iterdir()}


def test_float32_first_iterations(tmp_path):
    """In the training dtype the first iterations agree to float32 rounding (before Adam amplifies it)."""
    comp = make_composition(tmp_path / "toy")
    cfgs = [tiny(seed=s, max_iters=3, log_every=1) for s in SEEDS[:2]]
    train_seeds(comp, [tmp_path / "b0", tmp_path / "b1"], cfgs)
    for cfg in cfgs:
        train(comp, tmp_path / f"a{cfg.seed}", cfg)
        for x, y in zip(losses(tmp_path / f"a{cfg.seed}"), losses(tmp_path / f"b{cfg.seed}")):
            for key in set(x) - {"iter", "epoch", "lr", "its_per_s", "time"}:
                assert y[key] == pytest.approx(x[key], rel=1e-4, abs=1e-6), (cfg.seed, x["iter"], key)


def test_batched_seeds_resume_alone(tmp_path, float64):
    """A stopped batched seed continues alone (loop.train resume) to the single run's end."""
    comp = make_composition(tmp_path / "toy")
    cfgs = [tiny(seed=s) for s in SEEDS[:2]]
    dirs = [tmp_path / f"b{s}" for s in SEEDS[:2]]
    calls = {"n": 0}

    def stop_at_4():
        calls["n"] += 1
        return calls["n"] >= 4

    finals = train_seeds(comp, dirs, cfgs, should_stop=stop_at_4)
    assert [f["state"] for f in finals] == ["stopped", "stopped"] and finals[0]["iteration"] == 4
    assert train(comp, dirs[1], cfgs[1], resume=True)["state"] == "done"
    train(comp, tmp_path / "alone", cfgs[1])
    wa = load_checkpoint(tmp_path / "alone" / "checkpoints" / "latest.pt")["model_state"]["nets"]
    wb = load_checkpoint(dirs[1] / "checkpoints" / "latest.pt")["model_state"]["nets"]
    for name in wa:
        for key in wa[name]:
            assert torch.allclose(wb[name][key], wa[name][key], rtol=1e-8, atol=1e-8), (name, key)


def test_refused_configs(tmp_path):
    comp = make_composition(tmp_path / "toy")
    with pytest.raises(UserError, match="differ only in their seed"):
        train_seeds(comp, [tmp_path / "x", tmp_path / "y"], [tiny(seed=0), tiny(seed=1, lr=1e-3)])
    with pytest.raises(UserError, match="cyclegan and hybrid"):
        train_seeds(comp, [tmp_path / "x", tmp_path / "y"], [tiny(seed=0, model="pix2pix"), tiny(seed=1, model="pix2pix")])
