"""Networks, losses, image pool and lr schedule against the reference implementation and hand-computed values."""
from __future__ import annotations

import random

import pytest
import torch

from pairlab.models import MODELS
from pairlab.models.losses import (GANLoss, ImagePool, linear_decay, masked_l1, relativistic_d_loss,
                                   relativistic_g_loss)
from pairlab.models.networks import (NLayerDiscriminator, ResnetGenerator, UnetGenerator, count_parameters,
                                     init_weights, unet_num_downs)
from pairlab.train.config import MODEL_NAMES, TrainConfig


# ----- architectures ---------------------------------------------------------------------------------------
def test_reference_parameter_counts():
    """The counts the reference code (junyanz/pytorch-CycleGAN-and-pix2pix, networks.py) gives at ngf = ndf = 64."""
    assert count_parameters(ResnetGenerator(3, 3, ngf=64, n_blocks=9)) == 11_378_179
    assert count_parameters(NLayerDiscriminator(3, 64, n_layers=3, norm="instance")) == 2_764_737
    # pix2pix: conditional PatchGAN (6 input channels, batch norm) and unet_256.
    assert count_parameters(NLayerDiscriminator(6, 64, n_layers=3, norm="batch")) == 2_768_705
    # Summed by hand from the reference's UnetSkipConnectionBlock (downconvs and inner upconvs without bias under
    # batch norm, the outermost upconv with its 3 biases): 54,413,955, printed by the reference as "54.414 M".
    # (54,414,019 would need a bias on the outermost downconv, which the reference does not have.)
    assert count_parameters(UnetGenerator(3, 3, num_downs=8, ngf=64)) == 54_413_955


def test_unet_depth_follows_image_size():
    assert [unet_num_downs(s) for s in (32, 64, 128, 256)] == [5, 6, 7, 8]
    with pytest.raises(ValueError):
        unet_num_downs(96)


@pytest.mark.parametrize("size", [64, 128])
def test_output_shapes(size):
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert ResnetGenerator(ngf=8, n_blocks=2)(x).shape == x.shape
        assert UnetGenerator(num_downs=unet_num_downs(size), ngf=8)(x).shape == x.shape
        # 70x70 PatchGAN: three stride-2 convolutions then two 4x4 stride-1 ones -> size/8 - 2 per side.
        assert NLayerDiscriminator(3, 8)(x).shape == (1, 1, size // 8 - 2, size // 8 - 2)
        assert NLayerDiscriminator(6, 8, norm="batch")(torch.cat([x, x], 1)).shape == (1, 1, size // 8 - 2, size // 8 - 2)
    out = ResnetGenerator(ngf=8, n_blocks=2)(x * 100)
    assert out.abs().max() <= 1.0  # tanh output


def test_architecture_details():
    g = ResnetGenerator(ngf=64, n_blocks=9)
    convs = [m for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    # c7s1-64, d128, d256, 9 x (R256 = two convs), u128, u64, c7s1-3
    assert [m.out_channels for m in convs] == [64, 128, 256] + [256] * 18 + [128, 64, 3]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    norms = [m for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and all(not n.affine and not n.track_running_stats for n in norms)
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in g.modules())
    d = NLayerDiscriminator(3, 64)
    dconvs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in dconvs] == [64, 128, 256, 512, 1]
    first = list(d.model)[:2]
    assert isinstance(first[1], torch.nn.LeakyReLU) and first[1].negative_slope == 0.2  # no norm after C64
    u = UnetGenerator(num_downs=8, ngf=64)
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in u.modules()) == 3  # CD512 x 3
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in u.modules())


def test_init_std():
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(ngf=16, n_blocks=2), 0.02)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    assert w.mean().abs() < 2e-3 and w.std().item() == pytest.approx(0.02, rel=0.05)
    biases = [m.bias for m in g.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None]
    assert all(torch.all(b == 0) for b in biases)
    bn = [m for m in init_weights(UnetGenerator(num_downs=5, ngf=16)).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    scales = torch.cat([m.weight.detach() for m in bn])
    assert scales.mean().item() == pytest.approx(1.0, abs=0.01) and scales.std().item() == pytest.approx(0.02, rel=0.2)


# ----- losses ----------------------------------------------------------------------------------------------
def test_lsgan_loss_by_hand():
    pred = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    loss = GANLoss("lsgan")
    # MSE to 1: ((0-1)^2 + (0.5-1)^2 + 0 + (2-1)^2) / 4 = 2.25 / 4
    assert loss(pred, True).item() == pytest.approx(2.25 / 4)
    # MSE to 0: (0 + 0.25 + 1 + 4) / 4
    assert loss(pred, False).item() == pytest.approx(5.25 / 4)


def test_vanilla_bce_loss_by_hand():
    import math

    pred = torch.tensor([0.0, 2.0])
    loss = GANLoss("vanilla")
    # BCE with logits: -log(sigmoid(x)) for real, -log(1 - sigmoid(x)) for fake
    real = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    fake = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert loss(pred, True).item() == pytest.approx(real)
    assert loss(pred, False).item() == pytest.approx(fake)


def test_relativistic_losses_by_hand():
    import math

    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    # RaLSGAN: mean C(real) = 2, mean C(fake) = 1.
    # D: ((1-1-1)^2 + (3-1-1)^2)/2 = 1 ; ((0-2+1)^2 + (2-2+1)^2)/2 = 1 ; halved sum = 1
    assert relativistic_d_loss(real, fake, "ralsgan").item() == pytest.approx(1.0)
    # G: ((0-2-1)^2 + (2-2-1)^2)/2 = 5 ; ((1-1+1)^2 + (3-1+1)^2)/2 = 5 ; halved sum = 5
    assert relativistic_g_loss(real, fake, "ralsgan").item() == pytest.approx(5.0)
    # RSGAN (paper 002 Eq. 1-2): C(real) - C(fake) = 1 for both -> -log(sigmoid(1)); G: -log(sigmoid(-1))
    assert relativistic_d_loss(real, fake, "rsgan").item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert relativistic_g_loss(real, fake, "rsgan").item() == pytest.approx(math.log(1 + math.exp(1)))
    # RaGAN (relativistic average, logistic): C(real) - mean C(fake) = (0, 2), C(fake) - mean C(real) = (-2, 0).
    # D: BCE(., 1) = log(1 + e^-x) -> (log 2, log(1 + e^-2)); BCE(., 0) = log(1 + e^x) -> (log(1 + e^-2), log 2).
    d = 0.5 * ((math.log(2) + math.log(1 + math.exp(-2))) / 2 + (math.log(1 + math.exp(-2)) + math.log(2)) / 2)
    assert relativistic_d_loss(real, fake, "ragan").item() == pytest.approx(d)
    # G: BCE(fake - mean real, 1) -> (log(1 + e^2), log 2); BCE(real - mean fake, 0) -> (log 2, log(1 + e^2)).
    g = 0.5 * ((math.log(1 + math.exp(2)) + math.log(2)) / 2 + (math.log(2) + math.log(1 + math.exp(2))) / 2)
    assert relativistic_g_loss(real, fake, "ragan").item() == pytest.approx(g)


def test_rsgan_pairs_patch_maps_place_by_place():
    """Paper 002 Eq. (1)-(2) on PatchGAN-shaped outputs: each real patch against the fake patch at the same place,
    differences not all equal, mean over every sample and patch; gradients reach C(real) and C(fake)."""
    import math

    real = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]], [[[1.0, 1.0], [-0.5, 3.0]]]], requires_grad=True)  # 2x1x2x2
    fake = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]], [[[1.0, -2.0], [0.5, 0.0]]]], requires_grad=True)
    diffs = [0.5, -2.0, 3.0, -0.5, 0.0, 3.0, -1.0, 3.0]  # real - fake, place by place
    softplus = lambda x: math.log(1 + math.exp(x))
    d_hand = sum(softplus(-x) for x in diffs) / 8    # -log sigmoid(C(y) - C(y_hat))
    g_hand = sum(softplus(x) for x in diffs) / 8     # -log sigmoid(C(y_hat) - C(y))
    d = relativistic_d_loss(real, fake, "rsgan")
    g = relativistic_g_loss(real, fake, "rsgan")
    assert d.item() == pytest.approx(d_hand, rel=1e-6) and g.item() == pytest.approx(g_hand, rel=1e-6)
    # d/dC(fake) of the G loss is -sigmoid(-(C(y_hat) - C(y))) / 8 < 0: the generator makes fakes look more real
    # and, through C(y), reals look less real (the gradient on C(real) is the opposite).
    g.backward()
    sig = lambda x: 1 / (1 + math.exp(-x))
    expected = torch.tensor([-sig(x) / 8 for x in diffs]).view(2, 1, 2, 2)
    assert torch.allclose(fake.grad, expected, atol=1e-7) and torch.allclose(real.grad, -expected, atol=1e-7)


def test_masked_l1_counts_only_paired_samples():
    pred = torch.zeros(4, 3, 2, 2)
    target = torch.ones(4, 3, 2, 2) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(4, 1, 1, 1)
    assert masked_l1(pred, target, torch.tensor([1.0, 0, 1, 0])).item() == pytest.approx((1 + 3) / 4)
    zero = masked_l1(pred.requires_grad_(), target, torch.zeros(4))
    assert zero.item() == 0.0
    zero.backward()
    assert torch.all(pred.grad == 0)


# ----- image pool and schedule ----------------------------------------------------------------------------
def test_image_pool_fills_then_swaps_half():
    pool = ImagePool(50, seed=1)
    first = [torch.full((1, 3, 2, 2), float(i)) for i in range(50)]
    for img in first:
        assert torch.equal(pool.query(img), img)  # the first 50 go in and come back unchanged
    assert len(pool.images) == 50
    swapped = 0
    for i in range(2000):
        img = torch.full((1, 3, 2, 2), 1000.0 + i)
        out = pool.query(img)
        swapped += not torch.equal(out, img)
        assert len(pool.images) == 50
    assert 0.45 < swapped / 2000 < 0.55  # about half are exchanged for a stored image
    # The pool's own RNG and contents round-trip through a state dict.
    copy = ImagePool(50, seed=99)
    copy.load_state_dict(pool.state_dict(), "cpu")
    probe = torch.full((3, 3, 2, 2), -5.0)
    assert torch.equal(copy.query(probe), pool.query(probe.clone()))
    assert torch.equal(ImagePool(0).query(probe), probe)


def test_image_pool_does_not_touch_global_rng():
    random.seed(3)
    expected = random.random()
    random.seed(3)
    pool = ImagePool(1, seed=0)
    for _ in range(10):
        pool.query(torch.zeros(1, 3, 2, 2))
    assert random.random() == expected


def test_linear_decay_schedule():
    # 100 constant epochs, then 100 of linear decay (reference 'linear' policy with epoch_count 1).
    assert [linear_decay(e, 100, 100) for e in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert linear_decay(100, 100, 100) == pytest.approx(1 - 1 / 101)
    assert linear_decay(149, 100, 100) == pytest.approx(1 - 50 / 101)
    assert linear_decay(199, 100, 100) == pytest.approx(1 / 101)
    assert linear_decay(200, 100, 100) == 0.0
    steps = [linear_decay(e, 100, 100) for e in range(100, 200)]
    assert all(a > b for a, b in zip(steps, steps[1:]))


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_model_schedule_per_iteration():
    cfg = TrainConfig(image_size=32, ngf=4, ndf=4, n_blocks=1, n_epochs=2, n_epochs_decay=2).resolved()
    model = MODELS["cyclegan"](cfg, "cpu")
    model.setup_schedule(total_iters=40)  # 4 schedule epochs of 10 iterations
    lrs = []
    for _ in range(40):
        lrs.append(model.lr)
        model.step_schedule()
    assert lrs[0] == lrs[19] == pytest.approx(2e-4)
    assert lrs[20] == pytest.approx(2e-4 * (1 - 1 / 3)) and lrs[39] == pytest.approx(2e-4 / 3)


# ----- model kinds ---------------------------------------------------------------------------------------
def test_registry_matches_config():
    assert set(MODELS) == set(MODEL_NAMES) == {"cyclegan", "pix2pix", "hybrid"}


def _batch(n=2, size=32, paired=(0.0, 0.0)):
    torch.manual_seed(0)
    return {"A": torch.rand(n, 3, size, size) * 2 - 1, "B": torch.rand(n, 3, size, size) * 2 - 1,
            "paired": torch.tensor(paired), "pair": None}


def test_hybrid_l1_only_on_paired_samples():
    cfg = TrainConfig(model="hybrid", image_size=32, ngf=4, ndf=4, n_blocks=1, batch_size=2).resolved()
    torch.manual_seed(0)
    model = MODELS["hybrid"](cfg, "cpu")
    assert model.optimize(_batch(paired=(0.0, 0.0)))["L1"] == 0.0
    losses = model.optimize(_batch(paired=(1.0, 0.0)))
    assert losses["L1"] > 0
    # The value is lambda_l1 x (|G_A(a)-b| + |G_B(b)-a|) on the paired sample, divided by the batch size.
    torch.manual_seed(0)
    model = MODELS["hybrid"](cfg, "cpu")
    batch = _batch(paired=(1.0, 0.0))
    with torch.no_grad():
        fake_b, fake_a = model.nets["G_A"](batch["A"]), model.nets["G_B"](batch["B"])
        expected = 150 * ((fake_b[0] - batch["B"][0]).abs().mean() + (fake_a[0] - batch["A"][0]).abs().mean()) / 2
    assert model.optimize(batch)["L1"] == pytest.approx(expected.item(), rel=1e-5)
    assert "L1" not in MODELS["cyclegan"](cfg, "cpu").optimize(_batch())


def test_cyclegan_loss_terms_and_weights():
    cfg = TrainConfig(image_size=32, ngf=4, ndf=4, n_blocks=1).resolved()
    torch.manual_seed(0)
    model = MODELS["cyclegan"](cfg, "cpu")
    batch = _batch(n=1, paired=(0.0,))
    with torch.no_grad():
        rec_a = model.nets["G_B"](model.nets["G_A"](batch["A"]))
        idt_a = model.nets["G_A"](batch["B"])
    losses = model.optimize(batch)
    assert set(losses) == {"idt_A", "idt_B", "G_A", "G_B", "cycle_A", "cycle_B", "G", "D_A", "D_B"}
    assert losses["cycle_A"] == pytest.approx(10 * (rec_a - batch["A"]).abs().mean().item(), rel=1e-5)
    assert losses["idt_A"] == pytest.approx(0.5 * 10 * (idt_a - batch["B"]).abs().mean().item(), rel=1e-5)
    assert set(model.pools) == {"fake_A", "fake_B"} and len(model.pools["fake_B"].images) == 1


def test_implicit_pair_loss_flag():
    cfg = TrainConfig(image_size=32, ngf=4, ndf=4, n_blocks=1, batch_size=2, implicit_pair_loss=True).resolved()
    torch.manual_seed(0)
    model = MODELS["cyclegan"](cfg, "cpu")
    batch = _batch(paired=(1.0, 0.0))
    batch["pair"] = torch.zeros(2, 3, 32, 32)
    with torch.no_grad():
        expected = 0.5 * model.nets["G_A"](batch["A"])[0].abs().mean() / 2
    assert model.optimize(batch)["imp"] == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("mode", ["rsgan", "ragan", "ralsgan"])
def test_relativistic_option_trains(mode):
    cfg = TrainConfig(model="hybrid", image_size=32, ngf=4, ndf=4, n_blocks=1, relativistic=mode).resolved()
    model = MODELS["hybrid"](cfg, "cpu")
    losses = model.optimize(_batch(n=1, paired=(1.0,)))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_hybrid_uses_the_relativistic_losses_of_paper_002():
    """With relativistic="rsgan" the hybrid's adversarial terms are Eq. (2) for G and Eq. (1) for D, on the
    discriminators' raw outputs; the total G loss is 1 x GAN + 10 x cycle + 10 x idt + 150 x L1 (Eq. 6)."""
    cfg = TrainConfig(model="hybrid", image_size=32, ngf=4, ndf=4, n_blocks=1, relativistic="rsgan").resolved()
    torch.manual_seed(0)
    model = MODELS["hybrid"](cfg, "cpu")
    batch = _batch(n=1, paired=(1.0,))
    G_A, G_B, D_A, D_B = (model.nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
    with torch.no_grad():  # before the step: the pool returns the first fakes as they are
        fake_b, fake_a = G_A(batch["A"]), G_B(batch["B"])
        c_real_b, c_fake_b = D_A(batch["B"]), D_A(fake_b)
        c_real_a, c_fake_a = D_B(batch["A"]), D_B(fake_a)
        g_a = torch.nn.functional.softplus(c_real_b - c_fake_b).mean()   # -log sigmoid(C(y_hat) - C(y))
        d_a = torch.nn.functional.softplus(c_fake_b - c_real_b).mean()   # -log sigmoid(C(y) - C(y_hat))
        d_b = torch.nn.functional.softplus(c_fake_a - c_real_a).mean()
        cycle_a = (G_B(fake_b) - batch["A"]).abs().mean()
        idt_a = (G_A(batch["B"]) - batch["B"]).abs().mean()
        l1 = (fake_b - batch["B"]).abs().mean() + (fake_a - batch["A"]).abs().mean()
    losses = model.optimize(batch)
    assert losses["G_A"] == pytest.approx(g_a.item(), rel=1e-5)
    assert losses["D_A"] == pytest.approx(d_a.item(), rel=1e-5) and losses["D_B"] == pytest.approx(d_b.item(), rel=1e-5)
    assert losses["cycle_A"] == pytest.approx(10 * cycle_a.item(), rel=1e-5)
    assert losses["idt_A"] == pytest.approx(10 * idt_a.item(), rel=1e-5)
    assert losses["L1"] == pytest.approx(150 * l1.item(), rel=1e-5)
    terms = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "L1")
    assert losses["G"] == pytest.approx(sum(losses[k] for k in terms), rel=1e-5)


def test_pix2pix_translate_leaves_model_and_rng_alone():
    cfg = TrainConfig(model="pix2pix", image_size=64, ngf=4, ndf=4).resolved()
    model = MODELS["pix2pix"](cfg, "cpu")
    losses = model.optimize(_batch(n=1, size=64, paired=(1.0,)))
    assert set(losses) == {"G_GAN", "G_L1", "G", "D_real", "D_fake", "D"}
    before = {k: v.clone() for k, v in model.nets["G"].state_dict().items()}
    x = torch.rand(2, 3, 64, 64)
    rng = torch.get_rng_state()
    out1, out2 = model.translate(x), model.translate(x)
    assert torch.equal(out1, out2) and out1.shape == x.shape
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.nets["G"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_paper_sizes_build_with_expected_counts():
    cfg = TrainConfig().resolved()  # paper: ngf = ndf = 64, 9 blocks
    counts = MODELS["cyclegan"](cfg, "cpu").parameter_counts()
    assert counts == {"G_A": 11_378_179, "G_B": 11_378_179, "D_A": 2_764_737, "D_B": 2_764_737}
