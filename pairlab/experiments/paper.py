"""Paper 000's own numbers and claims, as data, for the experiments that reproduce them.

Source: /work/shared/papers/000_cc7ea0efe36ab18c.txt, "Implicit Pairs for Boosting Unpaired Image-to-Image
Translation" (Ginger, Danon, Averbuch-Elor, Cohen-Or), the authority for pairlab. That text copy carries no page
numbers, so every number below is cited by table and section; each was copied digit for digit from the text.

The paper's numbers come from **other datasets and another encoder** than the lab's (Cityscapes / CVC-14 / Facades
for Sec. 3, CelebA at 128 x 128 with OpenFace InfoSIM for Sec. 5, 1000 images per domain). They are printed beside
the lab's as a reference for the *direction and rough size* of an effect, never as values to match:
``PaperTable.different_setting`` says so in words for every table.

Claims (``CLAIMS``): one ``Claim`` per statement the paper makes about a comparison an experiment runs. A claim
compares a *treatment* with a *control* (dataset configurations of one experiment, ``CONFIGS``) on one metric and
says which way the paper says it goes: ``better="lower"`` means the paper says the treatment's value is lower than
the control's. When the treatment (or control) names several configurations, its per-seed value is the mean of
theirs (e.g. the three alpha mixes). ``evidence`` says what the paper backs the statement with: "table" (its own
numbers), "user study" (Table 6), or "qualitative" (figures and their captions only); ``paper`` sums up what the
paper's own numbers show for it, including where they do not bear it out.

Metrics are the lab registry's names (``pairlab.eval.metrics.REGISTRY``; ``metric_source="registry"``), except
Figure 9's feature-space distances (``metric_source="features"``: keys of ``pairlab.eval.features.group_stats``
rows, see ``FEATURE_METRICS``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

PAPER = "000"
PAPER_FILE = "000_cc7ea0efe36ab18c.txt"
PAPER_TITLE = "Implicit Pairs for Boosting Unpaired Image-to-Image Translation"

EXPERIMENTS = ("alpha", "baselines", "pseudo-alpha", "explicit", "figure9")
DIRECTIONS = ("AtoB", "BtoA")
EVIDENCE = ("table", "user study", "qualitative")


def config_key(value: float) -> str:
    """The configuration key of an alpha or pseudo-alpha: 0 -> "0", 0.25 -> "0.25", 1.0 -> "1"."""
    return f"{float(value):g}"


ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)        # Sec. 3, Tables 1-3
PSEUDO_ALPHAS = (0.25, 0.5, 0.75, 1.0)      # Sec. 5 "Pseudo-pairs ratio analysis", Table 5
ALPHA_MIXES = tuple(config_key(a) for a in ALPHAS if 0 < a < 1)

#: The dataset configurations each experiment compares (the keys its claims use).
CONFIGS: dict[str, tuple[str, ...]] = {
    "alpha": tuple(config_key(a) for a in ALPHAS),
    # Sec. 5.1 "Comparing implicit pseudo-pairs to baseline methods": (i) none, (ii) pseudo-unpaired, (iii) natural;
    # "ours" is the 0.5 pseudo-paired set (1000 real A + 1000 pseudo-pairs M(b), b)
    "baselines": ("none", "natural", "pseudo-unpaired", "pseudo-paired"),
    "pseudo-alpha": tuple(config_key(a) for a in PSEUDO_ALPHAS),
    # Table 7: "explicit" = Pix2Pix on the completely pseudo-paired set, "implicit" = CycleGAN on the 0.5
    # pseudo-paired set (Sec. 5, "Pseudo-pairs in different image-to-image translation settings")
    "explicit": ("implicit", "explicit"),
    # Figure 9: Pix2Pix ("explicit") and CycleGAN ("implicit") both trained on the 100% pseudo-paired set (smile
    # task in the paper)
    "figure9": ("explicit", "implicit"),
}

#: Figure 9's numbers: keys of ``pairlab.eval.features.group_stats`` rows (distance of a run's test-output mean
#: to a reference group's mean in the full feature space, in units of the source's RMS feature spread).
FEATURE_METRICS = {
    "dfeat_pseudo": "distance of the outputs' mean feature to the pseudo-samples' mean (lower: nearer the fakes)",
    "dfeat_real_off": "distance of the outputs' mean feature to the real attribute-off test images' mean "
                      "(lower: nearer real B, where A->B outputs belong)",
}

#: The lab's task names for the paper's row labels.
TASKS = {"Smile": "smile", "Eyeglass": "eyeglasses"}


# ================================================================================ the paper's tables
@dataclass(frozen=True)
class PaperTable:
    id: str                 # "table1" ...
    experiment: str         # the lab experiment it sits beside
    source: str             # where in paper 000
    caption: str            # the paper's caption, verbatim
    paper_metric: str       # what the paper measured, in its words
    metric: str             # the lab metric that corresponds ("" when the lab cannot compute it)
    better: str             # "lower" | "higher" | "" (Table 6: a preference rate, no direction per cell)
    different_setting: str  # why the numbers are not the lab's scale
    columns: tuple[str, ...]
    rows: dict = field(default_factory=dict)  # row label -> {column: value}
    notes: str = ""

    def value(self, row: str, column: str) -> float:
        return self.rows[row][column]


def _rows(columns: tuple[str, ...], body: dict[str, tuple]) -> dict:
    for r, vals in body.items():
        assert len(vals) == len(columns), (r, vals)
    return {r: dict(zip(columns, vals)) for r, vals in body.items()}


_SEC3 = ("Sec. 3 datasets (Cityscapes, CVC-14, Facades; CycleGAN), not the lab's source; the paper gives no pixel "
         "scale for its MSE (Facades B2A reaches 0.87), so only the ordering of rows is comparable")
_SEC5 = ("CelebA at 128 x 128, 1000 images per domain + 1000 augmentation samples, InfoSIM with the OpenFace "
         "encoder: the lab's source, synthesizer and identity encoder differ, so InfoSIM is on another scale")

_T1_COLS = ("Cityscapes A2B", "Cityscapes B2A", "CVC-14 A2B", "CVC-14 B2A", "Facades A2B", "Facades B2A")
TABLE1 = PaperTable(
    "table1", "alpha", "Sec. 3 'Implicit pairs', Table 1",
    "Reconstruction loss for different implicit pairing ratios, α. lower is better. A2B is photo → labels, "
    "B2A is labels→ photo.",
    "MSE between the generated images and their true counterparts (Sec. 3: 'we measure the MSE between the "
    "generated images and their true counterparts'), called reconstruction loss in the caption",
    "gt_mse", "lower", _SEC3, _T1_COLS,
    _rows(_T1_COLS, {
        "0": (0.26, 0.22, 0.23, 0.24, 0.36, 0.84),     # the row is labelled "0 (unpaired)"
        "0.25": (0.24, 0.21, 0.28, 0.29, 0.33, 0.84),
        "0.5": (0.24, 0.22, 0.22, 0.23, 0.37, 0.80),
        "0.75": (0.27, 0.22, 0.24, 0.22, 0.37, 0.84),
        "1": (0.25, 0.22, 0.23, 0.25, 0.33, 0.87),     # the row is labelled "1 (paired)"
    }),
    "A2B / B2A are the paper's directions (photo -> labels / labels -> photo); the lab's AtoB / BtoA are its own "
    "source's domains, so directions correspond only by name.")

_FCN_COLS = ("Per-pixel acc.", "Per-class acc.", "Class IOU")
TABLE2 = PaperTable(
    "table2", "alpha", "Sec. 3, Table 2",
    "FCN-scores for different implicit pairing ratios, α, on Cityscapes labels→photo, higher is better. "
    "Remarkably using a mix of paired and unpaired samples is always better.",
    "FCN-score (FCN-8 segmentation of the generated photo, Zhu's evaluation script; appendix 'FCN-score')",
    "", "higher", _SEC3, _FCN_COLS,
    _rows(_FCN_COLS, {"0": (0.46, 0.09, 0.07), "0.25": (0.69, 0.20, 0.15), "0.5": (0.69, 0.18, 0.14),
                      "0.75": (0.55, 0.17, 0.13), "1": (0.65, 0.20, 0.15)}),
    "The lab has no FCN-8 photo segmenter, so labels -> photo FCN-scores have no lab metric.")
TABLE3 = PaperTable(
    "table3", "alpha", "Sec. 3, Table 3",
    "FCN-scores for different implicit pairing ratios, α, on Cityscapes photo→labels, higher is better. "
    "Remarkably using a mix of paired and unpaired samples is always better.",
    "FCN-score of generated label maps (each pixel mapped to the nearest Cityscapes label colour; appendix)",
    "label_pixel_acc,label_class_acc,label_iou", "higher", _SEC3, _FCN_COLS,
    _rows(_FCN_COLS, {"0": (0.571, 0.132, 0.100), "0.25": (0.657, 0.138, 0.108), "0.5": (0.663, 0.142, 0.111),
                      "0.75": (0.582, 0.141, 0.108), "1": (0.658, 0.141, 0.110)}),
    "Columns map to the lab's label_pixel_acc, label_class_acc, label_iou (photo -> labels on a source with a "
    "palette only).")

_T4_COLS = ("pseudo-paired", "none", "pseudo-unpaired", "natural")
TABLE4 = PaperTable(
    "table4", "baselines", "Sec. 5.1 'Comparing implicit pseudo-pairs to baseline methods', Table 4",
    "InfoSIM comparison between the baseline augmentation methods described in Subsection 5.1. Lower is better.",
    "InfoSIM: MSE between OpenFace representations of input and output (Sec. 5.1 'Evaluation metrics')",
    "infosim", "lower", _SEC5, _T4_COLS,
    # paper columns: "ours" = pseudo-paired, (i) no-augmentation, (ii) pseudo-unpaired, (iii) natural
    _rows(_T4_COLS, {"Smile": (0.00160, 0.00365, 0.00282, 0.00372),
                     "Eyeglass": (0.00181, 0.00482, 0.00313, 0.00418)}),
    "The paper's columns are 'ours', (i), (ii), (iii); Sec. 5.1 defines (i) no-augmentation, (ii) pseudo-unpaired "
    "augmentation, (iii) natural augmentation. 'ours' equals Table 5's 0.5-Paired column.")

_T5_COLS = tuple(config_key(a) for a in PSEUDO_ALPHAS)
TABLE5 = PaperTable(
    "table5", "pseudo-alpha", "Sec. 5.1 'Pseudo-pairs ratio analysis', Table 5",
    "InfoSIM values for pairing ratios experiments. Lower is better.",
    "InfoSIM (OpenFace), as Table 4", "infosim", "lower", _SEC5, _T5_COLS,
    # paper columns: 0.25-Paired, 0.5-Paired, 0.75-Paired, 1-Paired
    _rows(_T5_COLS, {"Smile": (0.00293, 0.00160, 0.00093, 0.00025),
                     "Eyeglass": (0.00153, 0.00181, 0.00110, 0.00025)}),
    "Eyeglass 0.25 (0.00153) is below 0.5 (0.00181): the paper's own numbers are not monotone there.")

_T6_COLS = ("0%", "50%", "100%")
TABLE6 = PaperTable(
    "table6", "pseudo-alpha", "Sec. 5.1 'Task completion user study', Table 6",
    "Task completion preference rate according to user study",
    "share of 43 participants' choices preferring the row model over the column model (50 eyeglass and 41 smile "
    "samples; rows preferred, columns rejected; models trained on 0%, 50%, 100% pseudo-paired sets)",
    "task_rate", "", "a human study on CelebA; the lab's task_rate is an attribute classifier's verdict, a proxy "
    "for the question the participants answered, not the same measurement", _T6_COLS,
    # None on the diagonal ("-" in the paper)
    {"Smile": {"0%": {"0%": None, "50%": 0.257, "100%": 0.486},
               "50%": {"0%": 0.742, "50%": None, "100%": 0.663},
               "100%": {"0%": 0.513, "50%": 0.336, "100%": None}},
     "Eyeglass": {"0%": {"0%": None, "50%": 0.264, "100%": 0.915},
                  "50%": {"0%": 0.735, "50%": None, "100%": 1.0},
                  "100%": {"0%": 0.084, "50%": 0.0, "100%": None}}},
    "rows[task][preferred][rejected]. The 0% model's dataset is not spelled out (presumably the 1000 + 1000 "
    "pseudo-unpaired augmentation); the lab's Study tab reproduces this table itself.")

_T7_COLS = ("implicit", "explicit")
TABLE7 = PaperTable(
    "table7", "explicit", "Sec. 5.1 'Pseudo-pairs in different image-to-image translation settings', Table 7",
    "InfoSIM values for explicit and implicit experiments on the Eyeglass removal task. Lower is better.",
    "InfoSIM (OpenFace), as Table 4", "infosim", "lower", _SEC5, _T7_COLS,
    _rows(_T7_COLS, {"Eyeglass": (0.00181, 0.000342)}),
    "Lower InfoSIM for explicit is not a win: 'the explicit algorithm barely changes the input, thus achieving a "
    "very good identity preservation while not actually completing the task' (Sec. 5.1).")

TABLES: dict[str, PaperTable] = {t.id: t for t in (TABLE1, TABLE2, TABLE3, TABLE4, TABLE5, TABLE6, TABLE7)}

#: The paper's setup, for the report header (Sec. 3, Sec. 5.1 'Experimental setup', 'Task completion user study').
SETUP = {
    "alpha": "CycleGAN on Cityscapes, CVC-14 and Facades, |A| = |B|, alpha-paired train sets; MSE to the true "
             "counterparts and FCN-scores on the test sets (Sec. 3)",
    "pseudo": "CelebA, 1000 unpaired samples per domain + 1000 augmentation samples, 128 x 128, CycleGAN unless "
              "stated otherwise; InfoSIM with OpenFace (Sec. 5.1)",
    "user study": "43 participants, 50 eyeglass and 41 smile samples, two models at a time (Sec. 5.1)",
    "seeds": "the paper reports single numbers: no seeds, intervals or tests",
}

#: Headline percentages of Sec. 3 and how they follow from Tables 1-3 (checked from the rounded tables).
HEADLINES = {
    "paired_vs_unpaired": "Sec. 3: '1-paired datasets generally yield better performance than 0-paired datasets "
                          "with an average improvement of 14.2%'. From the rounded Tables 1-3 this is the mean over "
                          "all 12 measurements of the improvement relative to the alpha = 1 value (14.3%); it comes "
                          "mostly from the FCN-scores: Table 1's MSE alone averages +0.9%.",
    "mix_vs_paired": "Sec. 3: 'using a mix of paired and unpaired samples is usually a better strategy, surpassing "
                     "completely paired datasets on average by 3.4%'. From the rounded tables this matches the "
                     "*best* of the three mixes per measurement vs alpha = 1 (3.5%), a post-hoc choice; the mean of "
                     "the three mixes is 2.4% worse than alpha = 1.",
}


# ================================================================================ the claims
@dataclass(frozen=True)
class Claim:
    id: str
    experiment: str
    text: str                    # the claim in one sentence
    metric: str                  # lab metric (registry name, or a FEATURE_METRICS key)
    better: str                  # "lower" | "higher": the paper says treatment's value is lower / higher
    treatment: tuple[str, ...]   # configuration key(s) of the experiment; several -> mean of their per-seed values
    control: tuple[str, ...]
    source: str                  # where in paper 000
    evidence: str                # "table" | "user study" | "qualitative"
    quote: str                   # the paper's words
    paper: str = ""              # what the paper's own numbers show for this claim
    direction: str = "AtoB"      # the lab translation direction it is tested on
    metric_source: str = "registry"  # "registry" | "features"
    table: str = ""              # id of the PaperTable with the paper's numbers, if any


def _alpha_claims() -> list[Claim]:
    mixes = ALPHA_MIXES
    base = [
        ("alpha-paired-beats-unpaired", "a fully paired set (α = 1) gives lower MSE to ground truth than an unpaired "
         "one (α = 0): CycleGAN uses implicit pairs", ("1",), ("0",), "Sec. 3, discussion of Tables 1-3",
         "1-paired datasets generally yield better performance than 0-paired datasets with an average improvement "
         "of 14.2%",
         "Table 1 (MSE): α = 1 lower in 2 of 6 columns, equal in 2, higher in 2; the 14.2% is carried by the "
         "FCN-scores (Tables 2, 3). " + HEADLINES["paired_vs_unpaired"]),
        ("alpha-quarter-beats-unpaired", "pairing even 25% of the samples (α = 0.25) lowers the MSE to ground "
         "truth compared with no pairs (α = 0)", ("0.25",), ("0",), "Sec. 3, discussion of Tables 1-3",
         "having even a low 25% of the samples paired improves the results dramatically compared to having no "
         "pairs at all",
         "Table 1 (MSE): α = 0.25 lower in 3 of 6 columns, equal in 1, higher in 2 (both CVC-14); FCN-scores "
         "(Tables 2, 3) higher in all 6."),
        ("alpha-mix-beats-unpaired", "α-paired mixes (0 < α < 1) reach lower MSE to ground truth than α = 0",
         mixes, ("0",), "Sec. 3, captions of Tables 2 and 3",
         "Remarkably using a mix of paired and unpaired samples is always better.",
         "Table 1 (MSE), mean of the three mixes vs α = 0: lower in 4 of 6 columns, higher in 2 (both CVC-14); "
         "FCN-scores (Tables 2, 3) higher for every mix."),
        ("alpha-mix-beats-paired", "α-paired mixes (0 < α < 1) reach lower MSE to ground truth than a fully "
         "paired set (α = 1)", mixes, ("1",), "Sec. 3, discussion of Tables 1-3 and Sec. 3.1",
         "using a mix of paired and unpaired samples is usually a better strategy, surpassing completely paired "
         "datasets on average by 3.4%",
         "Table 1 (MSE), mean of the three mixes vs α = 1: lower in 3 of 6 columns, equal in 1, higher in 2. "
         + HEADLINES["mix_vs_paired"]),
    ]
    out = []
    for d in DIRECTIONS:
        for cid, text, trt, ctl, src, quote, paper in base:
            out.append(Claim(f"{cid}/{d}", "alpha", f"{text} ({d})", "gt_mse", "lower", trt, ctl, src, "table",
                             quote, paper, direction=d, table="table1"))
    return out


CLAIMS: tuple[Claim, ...] = tuple(_alpha_claims() + [
    # ---------------------------------------------------------------- Table 4: baselines
    Claim("baselines-paired-beats-none", "baselines",
          "implicit pseudo-pairs preserve identity better (lower InfoSIM) than no augmentation",
          "infosim", "lower", ("pseudo-paired",), ("none",), "Sec. 5.1, Table 4", "table",
          "using implicit pseudo-pairs improves the quality of the translation while better preserving the facial "
          "identity", "Table 4: Smile 0.00160 vs 0.00365, Eyeglass 0.00181 vs 0.00482 (both lower)", table="table4"),
    Claim("baselines-paired-beats-natural", "baselines",
          "implicit pseudo-pairs preserve identity better (lower InfoSIM) than natural augmentation with more real "
          "images", "infosim", "lower", ("pseudo-paired",), ("natural",), "Sec. 5.1, Table 4", "table",
          "using implicit pseudo-pairs improves the quality of the translation while better preserving the facial "
          "identity", "Table 4: Smile 0.00160 vs 0.00372, Eyeglass 0.00181 vs 0.00418 (both lower)", table="table4"),
    Claim("baselines-paired-beats-pseudo-unpaired", "baselines",
          "implicit pseudo-pairs preserve identity better (lower InfoSIM) than the same kind of pseudo-samples "
          "without their pairs", "infosim", "lower", ("pseudo-paired",), ("pseudo-unpaired",),
          "Sec. 5.1, Table 4", "table",
          "using implicit pseudo-pairs improves the quality of the translation while better preserving the facial "
          "identity", "Table 4: Smile 0.00160 vs 0.00282, Eyeglass 0.00181 vs 0.00313 (both lower)", table="table4"),
    Claim("baselines-paired-better-translation", "baselines",
          "implicit pseudo-pairs translate better (lower L1 to the true counterpart) than unpaired pseudo-samples",
          "gt_l1", "lower", ("pseudo-paired",), ("pseudo-unpaired",), "Sec. 5.1, Figures 4 and 5", "qualitative",
          "using implicit pseudo-pairs improves the quality of the translation while better preserving the facial "
          "identity. For instance, it is especially noticeable that using implicit pseudo-pairs introduces fewer "
          "artifacts in comparison to the other approaches",
          "no numbers: figures only (CelebA has no true counterparts)"),
    # ---------------------------------------------------------------- Table 5: pseudo-alpha
    Claim("pseudo-alpha-0.5-beats-0.25", "pseudo-alpha",
          "more pseudo-pairs preserve identity better: pseudo-α 0.5 has lower InfoSIM than 0.25",
          "infosim", "lower", ("0.5",), ("0.25",), "Sec. 5.1 'Pseudo-pairs ratio analysis', Table 5", "table",
          "The results clearly demonstrate that the more pairs we have in the dataset, the better the identity is "
          "preserved", "Table 5: Smile 0.00160 vs 0.00293 (lower); Eyeglass 0.00181 vs 0.00153 (higher: the "
          "paper's own numbers reverse this step)", table="table5"),
    Claim("pseudo-alpha-0.75-beats-0.5", "pseudo-alpha",
          "more pseudo-pairs preserve identity better: pseudo-α 0.75 has lower InfoSIM than 0.5",
          "infosim", "lower", ("0.75",), ("0.5",), "Sec. 5.1 'Pseudo-pairs ratio analysis', Table 5", "table",
          "The results clearly demonstrate that the more pairs we have in the dataset, the better the identity is "
          "preserved", "Table 5: Smile 0.00093 vs 0.00160, Eyeglass 0.00110 vs 0.00181 (both lower)",
          table="table5"),
    Claim("pseudo-alpha-1-beats-0.75", "pseudo-alpha",
          "more pseudo-pairs preserve identity better: pseudo-α 1 has lower InfoSIM than 0.75",
          "infosim", "lower", ("1",), ("0.75",), "Sec. 5.1 'Pseudo-pairs ratio analysis', Table 5", "table",
          "The results clearly demonstrate that the more pairs we have in the dataset, the better the identity is "
          "preserved", "Table 5: Smile 0.00025 vs 0.00093, Eyeglass 0.00025 vs 0.00110 (both lower)",
          table="table5"),
    Claim("pseudo-alpha-0.5-completes-task", "pseudo-alpha",
          "a higher pairing ratio completes the task worse: pseudo-α 0.5 has a higher task completion rate than 1",
          "task_rate", "higher", ("0.5",), ("1",), "Sec. 5.1, Table 6 and Figures 6, 7", "user study",
          "higher pairing ratio leads to poor task completion as the model is exposed to more pseudo-pairs and fewer "
          "examples of the real domain ... It is clear that using a 50% pseudo-paired yields the best results in "
          "terms of task completion",
          "Table 6: 50% preferred over 100% at 0.663 (Smile) and 1.0 (Eyeglass) of the votes; measured by people, "
          "the lab's task_rate is a classifier's proxy", table="table6"),
    # ---------------------------------------------------------------- Table 7 / Figure 8: explicit vs implicit
    Claim("explicit-lower-infosim", "explicit",
          "Pix2Pix on explicit pseudo-pairs has lower InfoSIM than CycleGAN on implicit ones (because it barely "
          "changes the input)", "infosim", "lower", ("explicit",), ("implicit",),
          "Sec. 5.1 'Pseudo-pairs in different image-to-image translation settings', Table 7", "table",
          "the explicit algorithm barely changes the input, thus achieving a very good identity preservation while "
          "not actually completing the task", "Table 7 (Eyeglass): explicit 0.000342 vs implicit 0.00181 (lower)",
          table="table7"),
    Claim("explicit-implicit-completes-task", "explicit",
          "CycleGAN on implicit pseudo-pairs completes the task more often than Pix2Pix on explicit ones",
          "task_rate", "higher", ("implicit",), ("explicit",), "Sec. 5.1, Figure 8", "qualitative",
          "the explicit algorithm barely changes the input, thus achieving a very good identity preservation while "
          "not actually completing the task ... an implicit setting leads to the best and most consistent results",
          "no numbers: Figure 8 only"),
    Claim("explicit-implicit-removes-more", "explicit",
          "CycleGAN on implicit pseudo-pairs removes more of the attribute region's error than Pix2Pix on explicit "
          "ones, which barely changes the input", "gt_region_removed", "higher", ("implicit",), ("explicit",),
          "Sec. 5.1, Figure 8", "qualitative",
          "the explicit algorithm barely changes the input ... This prevents it from generalizing to the real "
          "eyeglasses in the test set", "no numbers: Figure 8 only"),
    # ---------------------------------------------------------------- Figure 9: feature space
    Claim("figure9-pix2pix-nearer-pseudo", "figure9",
          "trained on 100% pseudo-pairs, Pix2Pix outputs lie nearer the pseudo-samples in feature space than "
          "CycleGAN outputs (the pseudo-samples' divergence is repeated by Pix2Pix only)",
          "dfeat_pseudo", "lower", ("explicit",), ("implicit",), "Sec. 5.1 'Distribution analysis', Figure 9",
          "qualitative",
          "the divergence is repeated in the results of the Pix2Pix model (in red) but not in the results for the "
          "same samples by the unsupervised CycleGAN model (in cyan)", "no numbers: a PCA scatter plot",
          metric_source="features"),
    Claim("figure9-cyclegan-nearer-real", "figure9",
          "trained on 100% pseudo-pairs, CycleGAN outputs lie nearer the real target-domain images in feature space "
          "than Pix2Pix outputs", "dfeat_real_off", "lower", ("implicit",), ("explicit",),
          "Sec. 5.1 'Distribution analysis', Figure 9", "qualitative",
          "there is a prominent divergence between the expression representation of the real data ... and the "
          "representation of the generated samples ... repeated in the results of the Pix2Pix model ... but not in "
          "the results ... by the unsupervised CycleGAN model", "no numbers: a PCA scatter plot",
          metric_source="features"),
])


def claims_for(experiment: str) -> list[Claim]:
    """The claims one experiment tests, in order (Holm's family, see ``pairlab.experiments.stats``)."""
    if experiment not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {experiment!r}; choose from {', '.join(EXPERIMENTS)}")
    return [c for c in CLAIMS if c.experiment == experiment]


def tables_for(experiment: str) -> list[PaperTable]:
    return [t for t in TABLES.values() if t.experiment == experiment]


def paper_comparison(claim: Claim) -> list[tuple[str, float, float, bool | None]]:
    """The paper's own numbers for a claim: (what, treatment value, control value, agrees) per measurement of its
    table, where ``agrees`` says whether the paper's numbers go the claimed way (None: equal). Empty when the claim
    has no table or its table has no matrix of configurations per column (Table 6)."""
    if not claim.table or claim.table == "table6":
        return []
    t = TABLES[claim.table]

    def val(configs, get):
        return sum(get(c) for c in configs) / len(configs)

    out = []
    if claim.table == "table1":  # rows are alphas, columns are dataset x direction
        for col in t.columns:
            out.append((col, val(claim.treatment, lambda c: t.value(c, col)),
                        val(claim.control, lambda c: t.value(c, col))))
    else:  # rows are tasks, columns are configurations
        for row in t.rows:
            out.append((row, val(claim.treatment, lambda c: t.value(row, c)),
                        val(claim.control, lambda c: t.value(row, c))))
    res = []
    for what, a, b in out:
        a, b = round(a, 10), round(b, 10)
        agrees = None if a == b else ((a < b) if claim.better == "lower" else (a > b))
        res.append((what, a, b, agrees))
    return res
