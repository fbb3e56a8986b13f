"""The model specs (pairlab.models.spec): torch-free, true to the model classes, and the only place kinds are named."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pairlab.errors import UserError
from pairlab.models.spec import MODEL_DEPENDENT, MODEL_NAMES, SPECS, find_spec, get_spec

ROOT = Path(__file__).resolve().parents[1]


def test_spec_imports_without_torch():
    code = ("import sys; import pairlab.models.spec; from pairlab.models import SPECS, get_spec, MODEL_NAMES; "
            "import pairlab.models; assert 'torch' not in sys.modules, 'torch was imported'; print(MODEL_NAMES)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('cyclegan', 'pix2pix', 'hybrid')"


def test_registry():
    assert MODEL_NAMES == tuple(SPECS) == ("cyclegan", "pix2pix", "hybrid")
    assert [SPECS[n].label for n in MODEL_NAMES] == ["CycleGAN", "Pix2Pix", "hybrid (paired + unpaired)"]
    assert set(MODEL_DEPENDENT) == {"lambda_identity", "lambda_l1", "pool_size"}
    for name, spec in SPECS.items():
        assert get_spec(name) is spec is find_spec(name) and spec.name == name
        assert set(spec.defaults) == set(MODEL_DEPENDENT)
    assert find_spec("stylegan") is None and find_spec(None) is None and find_spec("") is None
    with pytest.raises(UserError) as err:
        get_spec("stylegan")
    assert str(err.value) == "Unknown model 'stylegan'; choose one of cyclegan, pix2pix, hybrid."
    with pytest.raises(UserError):
        get_spec(None)


def test_what_each_kind_answers():
    cyc, p2p, hyb = (SPECS[n] for n in MODEL_NAMES)
    assert cyc.generators == {"AtoB": "G_A", "BtoA": "G_B"} == hyb.generators and p2p.generators == {"AtoB": "G"}
    assert cyc.directions == hyb.directions == ("AtoB", "BtoA") and p2p.directions == ("AtoB",)
    assert (cyc.needs_pairs, p2p.needs_pairs, hyb.needs_pairs) == (False, True, False)
    assert (cyc.uses_pairs, p2p.uses_pairs, hyb.uses_pairs) == (False, True, True)
    assert (cyc.batch_stats_inference, p2p.batch_stats_inference, hyb.batch_stats_inference) == (False, True, False)
    assert (cyc.paired_repeats_apply, p2p.paired_repeats_apply, hyb.paired_repeats_apply) == (False, False, True)
    assert (cyc.color, p2p.color, hyb.color) == ("#00bcd4", "#e41a1c", None)
    assert p2p.generator("AtoB") == "G"
    with pytest.raises(UserError):
        p2p.generator("BtoA")
    with pytest.raises(TypeError):
        cyc.defaults["pool_size"] = 1  # read-only
    with pytest.raises(AttributeError):
        cyc.name = "other"  # frozen


def test_config_checks_and_defaults_come_from_the_spec():
    from pairlab.train.config import TrainConfig

    for name, spec in SPECS.items():
        cfg = TrainConfig(model=name, image_size=64).resolved()
        assert {k: getattr(cfg, k) for k in spec.defaults} == dict(spec.defaults)
        assert spec.check_config(cfg) is None
    assert TrainConfig(model="cyclegan", image_size=48).image_size == 48
    with pytest.raises(UserError, match="power-of-two image_size of at least 32"):
        TrainConfig(model="pix2pix", image_size=48)
    with pytest.raises(UserError, match="Unknown model 'unet'"):
        TrainConfig(model="unet")
    cfg = TrainConfig(n_blocks=6).resolved()
    assert SPECS["cyclegan"].describe_networks(cfg) == "ResNet G with 6 blocks" == SPECS["hybrid"].describe_networks(cfg)
    assert SPECS["pix2pix"].describe_networks(cfg) == "U-Net G"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_spec_matches_its_model_class(name):
    import torch

    from pairlab.models import MODELS
    from pairlab.train.checkpoint import generator_of
    from pairlab.train.config import TrainConfig

    spec, Model = SPECS[name], MODELS[name]
    assert list(MODELS) == list(MODEL_NAMES)
    assert Model.spec is spec and Model.name == name and Model.data_mode == spec.data_mode
    assert dict(Model.defaults) == dict(spec.defaults) and Model.directions == spec.directions
    cfg = TrainConfig(model=name, image_size=32, ngf=4, ndf=4, n_blocks=1).resolved()
    with torch.random.fork_rng(devices=[]):
        model = Model(cfg, "cpu")
    for direction, net in spec.generators.items():
        assert net in model.nets and generator_of(model, direction) == net
        x = torch.zeros(1, 3, 32, 32)
        with torch.no_grad():
            assert model.translate(x, direction).shape == x.shape
    # the networks of the kind: its generators plus its discriminators (D / D_A, D_B)
    assert {n for n in model.nets if n.startswith("G")} == set(spec.generators.values())
    # pix2pix's generator normalises with batch statistics (BatchNorm), the others' with instance norm
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.nets[spec.generator("AtoB")].modules())
    assert has_bn == spec.batch_stats_inference


# ----- nothing outside pairlab/models/ compares model-kind strings ------------------------------------------
KIND = r"""["'](?:cyclegan|pix2pix|hybrid)["']"""
PATTERNS = {
    "compared with ==/!=": re.compile(rf"(?:==|!=)\s*{KIND}|{KIND}\s*(?:==|!=)"),
    "tested with in (...)": re.compile(rf"\bin\s*[(\[{{][^)\]}}]*{KIND}"),
    "a dict keyed by kind": re.compile(rf"{KIND}\s*:\s*\S"),
    "a list of kinds": re.compile(rf"{KIND}\s*,\s*{KIND}"),
}
# Data modes (the loader's "unaligned" / "aligned" / "hybrid", from ModelSpec.data_mode) are another vocabulary
# that happens to share the word "hybrid".
DATA_MODE = re.compile(r"\b(?:data_mode|self\.mode)\s*(?:==|!=|\bin\b)")


def kind_comparisons(text: str) -> list[str]:
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if DATA_MODE.search(code):
            continue
        for what, pattern in PATTERNS.items():
            if pattern.search(code):
                found.append(f"{n}: {what}: {line.strip()}")
    return found


def test_the_checker_finds_what_it_should():
    bad = ['if model == "pix2pix":', "x = 'cyclegan' != kind", 'if cfg.model in ("cyclegan", "hybrid"):',
           'pretty = {"pix2pix": "Pix2Pix"}', 'choices=["cyclegan", "pix2pix", "hybrid"]', "if m not in ['hybrid']:"]
    for line in bad:
        assert kind_comparisons(line), line
    good = ['submit(comp, model="cyclegan")', 'DemoSpec("pix2pix-pseudo", "Pix2Pix", "pix2pix", r)',
            'elif data_mode == "hybrid":', 'if self.mode in ("aligned", "hybrid"):', '"hybrid: --set paired_repeats"',
            'get_spec(cfg.model).needs_pairs']
    for line in good:
        assert not kind_comparisons(line), line


def test_no_model_kind_string_comparisons_outside_models():
    pkg = ROOT / "pairlab"
    found = []
    for path in sorted(pkg.rglob("*.py")):
        if (pkg / "models") in path.parents:
            continue
        found += [f"{path.relative_to(ROOT)}:{hit}" for hit in kind_comparisons(path.read_text())]
    assert not found, "ask pairlab.models.spec instead:\n" + "\n".join(found)
