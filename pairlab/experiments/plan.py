"""What each experiment trains: profiles (how big), arms (one dataset + model each), and the experiments' configs.

An **arm** is one unique (recipe, model) pair, trained once per seed and shared by every experiment that compares
it (the 0.5 pseudo-paired CycleGAN is Table 4's "ours", Table 5's 0.5 and Table 7's "implicit"):

    alpha-0 ... alpha-1        CycleGAN on an alpha-paired composition (Sec. 3, Table 1)
    aug-none / aug-natural / aug-pseudo-unpaired
                               CycleGAN on n real A + n real B and the baselines' augmentation (Table 4)
    pp-0.25 ... pp-1           CycleGAN on the pseudo-paired composition at that pseudo-alpha (Tables 4, 5)
    pix2pix-pp-1               Pix2Pix on the completely pseudo-paired set (Table 7 "explicit", Figure 9)

A **profile** fixes the scale: the SynthFaces source, image size, N, test size, the training preset and its
overrides, and the default seeds. ``quick`` fits every experiment with 3 seeds on a 2-core CPU (see
``experiment plan all --profile quick``); ``paper`` is the paper's scale for a GPU (128², the vanilla networks,
200 epochs: ``paper-128``); ``tiny`` proves the plumbing in tests.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..data.recipes import Recipe
from ..errors import UserError
from .paper import ALPHAS, CONFIGS, EXPERIMENTS, PSEUDO_ALPHAS, config_key

TASKS = ("eyeglasses", "smile")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    source: dict                    # SynthFaces: count, size, seed
    image_size: int                 # compositions are resized to this
    n: int                          # real images per domain
    n_test: int                     # test images per domain
    preset: str                     # training preset
    overrides: tuple[str, ...] = ()  # "key=value" on top of the preset
    seeds: tuple[int, ...] = (0, 1, 2)
    metrics: tuple[str, ...] | None = None  # None: every available metric

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "quick": Profile(
        "quick", "every experiment with 3 seeds in under 3 hours on a 2-core CPU: 64x64 faces, N = 200, 100 test "
                 "images, narrow cpu-demo-64 networks (ngf 16, ndf 16, 6 ResNet blocks) for 2,000 iterations",
        source={"count": 1500, "size": 128, "seed": 0}, image_size=64, n=200, n_test=100, preset="cpu-demo-64",
        overrides=("ngf=16", "ndf=16", "max_iters=2000", "save_every=500", "sample_every=500", "log_every=25")),
    "paper": Profile(
        "paper", "the paper's scale, for a GPU: 128x128 faces, N = 1,000 (Sec. 5.1), the vanilla networks "
                 "(ResNet-9, ngf 64) for 200 epochs (paper-128)",
        source={"count": 6000, "size": 128, "seed": 0}, image_size=128, n=1000, n_test=200, preset="paper-128",
        overrides=()),
    "tiny": Profile(
        "tiny", "plumbing only (tests): 32x32, N = 8, 4 test images, a 1-block network for 2 iterations",
        source={"count": 120, "size": 64, "seed": 0}, image_size=32, n=8, n_test=4, preset="cpu-demo-64",
        overrides=("image_size=32", "load_size=36", "ngf=4", "ndf=4", "n_blocks=1", "max_iters=2",
                   "save_every=2", "sample_every=2", "log_every=1"),
        # the weight-free metrics only: no encoder or classifier is trained for a test
        seeds=(0, 1), metrics=("gt_l1", "gt_mse", "gt_l1_region", "gt_l1_outside", "gt_region_removed")),
}


@dataclass(frozen=True)
class Arm:
    id: str
    model: str
    recipe: Recipe
    label: str

    def to_dict(self) -> dict:
        return {"id": self.id, "model": self.model, "recipe": asdict(self.recipe), "label": self.label}


def _recipe(profile: Profile, task: str, **fields) -> Recipe:
    return Recipe(task=task, n=profile.n, n_test=profile.n_test, image_size=profile.image_size, seed=0,
                  **fields).validate()


def arms(task: str, profile: Profile) -> dict[str, Arm]:
    """Every arm of every experiment for this task and profile, by id."""
    if task not in TASKS:
        raise UserError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    out = {}
    for a in ALPHAS:
        key = f"alpha-{config_key(a)}"
        out[key] = Arm(key, "cyclegan", _recipe(profile, task, kind="alpha-paired", alpha=a),
                       f"CycleGAN, alpha {config_key(a)}")
    for aug in ("none", "natural", "pseudo-unpaired"):
        key = f"aug-{aug}"
        out[key] = Arm(key, "cyclegan", _recipe(profile, task, kind="pseudo", augmentation=aug),
                       f"CycleGAN, {aug} augmentation")
    for pa in PSEUDO_ALPHAS:
        key = f"pp-{config_key(pa)}"
        out[key] = Arm(key, "cyclegan", _recipe(profile, task, kind="pseudo", augmentation="pseudo-paired",
                                                pseudo_alpha=pa), f"CycleGAN, pseudo-paired {config_key(pa)}")
    out["pix2pix-pp-1"] = Arm("pix2pix-pp-1", "pix2pix",
                              _recipe(profile, task, kind="pseudo", augmentation="pseudo-paired", pseudo_alpha=1.0),
                              "Pix2Pix, completely pseudo-paired")
    return out


#: experiment -> {its configuration key (paper.CONFIGS) -> arm id}
ARMS_OF = {
    "alpha": {config_key(a): f"alpha-{config_key(a)}" for a in ALPHAS},
    "baselines": {"none": "aug-none", "natural": "aug-natural", "pseudo-unpaired": "aug-pseudo-unpaired",
                  "pseudo-paired": "pp-0.5"},
    "pseudo-alpha": {config_key(a): f"pp-{config_key(a)}" for a in PSEUDO_ALPHAS},
    "explicit": {"implicit": "pp-0.5", "explicit": "pix2pix-pp-1"},
    "figure9": {"explicit": "pix2pix-pp-1", "implicit": "pp-1"},
}
assert all(set(ARMS_OF[e]) == set(CONFIGS[e]) for e in EXPERIMENTS), "every configuration of paper.CONFIGS has an arm"

#: which directions an experiment's metrics are read in (Sec. 3 measures both; Sec. 5 removes the attribute)
DIRECTIONS_OF = {"alpha": ("AtoB", "BtoA"), "baselines": ("AtoB",), "pseudo-alpha": ("AtoB",), "explicit": ("AtoB",),
                 "figure9": ("AtoB",)}


def experiment_names(name: str) -> tuple[str, ...]:
    """``all`` -> every experiment; else the one named (a one-sentence error for an unknown name)."""
    if name == "all":
        return EXPERIMENTS
    if name not in EXPERIMENTS:
        raise UserError(f"Unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} or all.")
    return (name,)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"Unknown profile {name!r}; choose one of {', '.join(PROFILES)}.")
    return PROFILES[name]


@dataclass(frozen=True)
class Plan:
    """The arms and runs of some experiments: what ``experiment plan`` prints and ``experiment`` trains."""
    experiments: tuple[str, ...]
    task: str
    profile: Profile
    seeds: tuple[int, ...]
    arms: dict = field(default_factory=dict)  # arm id -> Arm, only those the experiments use

    @property
    def runs(self) -> list[tuple[str, int]]:
        return [(arm, seed) for arm in self.arms for seed in self.seeds]


def make_plan(name: str, task: str = "eyeglasses", profile: str = "quick", seeds=None, n: int | None = None) -> Plan:
    from dataclasses import replace

    names = experiment_names(name)
    prof = get_profile(profile)
    if n is not None:
        if int(n) < 2:
            raise UserError(f"N must be at least 2, got {n}.")
        prof = replace(prof, n=int(n))
    if seeds is not None:
        from ..train.jobs import parse_seeds

        prof = replace(prof, seeds=tuple(parse_seeds(seeds)))
    every = arms(task, prof)
    used = [a for e in names for a in ARMS_OF[e].values()]
    chosen = {a: arm for a, arm in every.items() if a in used}
    return Plan(names, task, prof, prof.seeds, chosen)
