"""Comparing runs side by side: ordering and grouping by composition alpha / recipe, sweeps, the paper's ready-made
views, the image grid (one PNG with column headers), the metric table (CSV / LaTeX) and plot data of each metric
against alpha with error bars over seeds.

Plain functions of run folders and ``evaluate_runs`` results; ``comparison.compare`` puts them together into one
``Comparison`` (the Compare tab and ``python -m pairlab compare`` are thin layers over it).

    described = describe_runs(run_dirs)            # what each run is; one sentence for a run that cannot be read
    grid = build_grid(run_dirs, rows=6, seed=0)    # {"image": PIL, "columns": [...], "samples": [...], "problems"}
                                                   # outline=True: the attribute region drawn on each image
    headers, rows = comparison_table(results)      # per run, or aggregated over seeds; baseline rows after the runs
    to_csv(headers, rows); to_latex(headers, rows)
    plot_series(results, "gt_mse")                 # [{"name", "x": alphas, "y", "err_low", "err_high", "seeds"}]
    baseline_lines(results, "gt_mse")              # the input-unchanged baseline: [{"name", "y", "ci_low", ...}]

``results`` may hold the input-unchanged (identity map) rows of ``evaluate_runs(..., baseline=True)``: the table
shows them as their own rows (recipe 'baseline'), the plot as horizontal reference lines.
"""
from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import UserError
from ..models.spec import find_spec
from .drawing import load_font
from .evaluate import BEST_MARK, aggregate_seeds, check_comparable, describe_run, is_baseline, metrics_table
from .outputs import checkpoint_path, translate_test_set

AUGMENTATION_ORDER = {"none": 0, "natural": 1, "pseudo-unpaired": 2, "pseudo-paired": 3}
KIND_ORDER = {"alpha-paired": 0, "pseudo": 1, "explicit": 2}

VIEWS = {
    "all": "All selected runs",
    "alpha": "Alpha ratios (Tables 1-3, 5)",
    "baselines": "Baselines vs pseudo-pairs (Table 4)",
    "explicit": "Explicit vs implicit (Table 7)",
}


# ================================================================================ describing and ordering runs
def describe_runs(run_dirs, checkpoint="latest") -> list[dict]:
    """``evaluate.describe_run`` of each run plus its checkpoint check; a run that cannot be used gets ``error``."""
    out = []
    for run in run_dirs:
        try:
            d = describe_run(run)
            checkpoint_path(Path(d["run"]), checkpoint)  # a run without checkpoints says so here, before any work
        except UserError as exc:
            d = {"run": str(run), "name": Path(str(run)).name, "error": str(exc)}
        out.append(d)
    problems = check_comparable(out)
    for d in out:
        if d["run"] in problems:
            d["error"] = problems[d["run"]]
    return out


def recipe_label(recipe: dict | None, alpha=None) -> str:
    """A short column label: 'alpha 0.50', 'pseudo-paired 0.75', 'natural', 'explicit (pseudo)'."""
    recipe = recipe or {}
    kind = recipe.get("kind")
    if kind == "alpha-paired":
        return f"alpha {float(recipe.get('alpha', alpha or 0)):.2f}"
    if kind == "pseudo":
        aug = recipe.get("augmentation", "?")
        return f"{aug} {float(recipe.get('pseudo_alpha', 0)):.2f}" if aug == "pseudo-paired" else aug
    if kind == "explicit":
        return f"explicit ({recipe.get('pairs_from', 'pseudo')})"
    return "alpha ?" if alpha is None else f"alpha {float(alpha):.2f}"


def order_key(d: dict, by: str = "alpha") -> tuple:
    """Sort runs by measured alpha (by='alpha') or by recipe kind / augmentation, then alpha (by='recipe')."""
    recipe = d.get("recipe") or {}
    alpha = d.get("alpha")
    a = float(alpha) if alpha is not None else -1.0
    kind = KIND_ORDER.get(recipe.get("kind"), 9)
    aug = AUGMENTATION_ORDER.get(recipe.get("augmentation"), 9) if recipe.get("kind") == "pseudo" else 0
    tail = (str(d.get("model")), d.get("seed") if d.get("seed") is not None else 0, str(d.get("name")))
    if by == "recipe":
        return (kind, aug, a) + tail
    return (a, kind, aug) + tail


def sort_runs(described: list[dict], by: str = "alpha") -> list[dict]:
    return sorted(described, key=lambda d: order_key(d, by))


def group_runs(described: list[dict], by: str = "alpha") -> dict[str, list[dict]]:
    """Usable runs grouped by measured alpha ('alpha 0.50') or recipe label, in order; each group's runs by seed."""
    groups: dict[str, list[dict]] = {}
    for d in sort_runs([d for d in described if not d.get("error")], by):
        if by == "alpha":
            key = "alpha ?" if d.get("alpha") is None else f"alpha {float(d['alpha']):.2f}"
        else:
            key = recipe_label(d.get("recipe"), d.get("alpha"))
        groups.setdefault(key, []).append(d)
    return groups


def column_label(d: dict) -> str:
    """A grid column header for a run: model, recipe label, seed."""
    return f"{d.get('model')} {recipe_label(d.get('recipe'), d.get('alpha'))} s{d.get('seed')}"


def sweeps(runs: list[dict]) -> dict[str, list[str]]:
    """Finished runs (``Queue.list_runs`` dicts) sharing a model and preset over several compositions or seeds:
    {label: [run ids]}."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if r.get("state") == "done":
            groups.setdefault((r.get("model"), r.get("preset")), []).append(r)
    out = {}
    for (model, preset), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len(members) < 2:
            continue
        comps = len({m.get("composition") for m in members})
        seeds = len({m.get("seed") for m in members})
        out[f"{model} · {preset} ({len(members)} runs: {comps} compositions × {seeds} seeds)"] = \
            sorted(m["id"] for m in members)
    return out


# ================================================================================ ready-made views
def apply_view(view: str, described: list[dict]) -> tuple[list[dict], str, str]:
    """(runs in the view, ordered; 'alpha' or 'recipe' ordering; a sentence when the view leaves runs out)."""
    if view in (None, "", "all"):
        return sort_runs(described, "alpha"), "alpha", ""
    if view not in VIEWS:
        raise UserError(f"Unknown view '{view}'; choose one of: {', '.join(VIEWS)}.")
    bad = [d for d in described if d.get("error")]
    good = [d for d in described if not d.get("error")]

    def kind(d):
        return (d.get("recipe") or {}).get("kind")

    if view == "alpha":
        keep = [d for d in good if kind(d) == "alpha-paired"
                or (kind(d) == "pseudo" and (d.get("recipe") or {}).get("augmentation") == "pseudo-paired")]
        by, what = "alpha", "alpha-paired or pseudo-paired compositions"
    elif view == "baselines":
        keep = [d for d in good if kind(d) == "pseudo"]
        by, what = "recipe", "pseudo-recipe compositions (none / natural / pseudo-unpaired / pseudo-paired)"
    else:
        keep = [d for d in good if kind(d) == "explicit" or getattr(find_spec(d.get("model")), "needs_pairs", False)
                or (kind(d) == "pseudo" and (d.get("recipe") or {}).get("augmentation") == "pseudo-paired")]
        by, what = "recipe", "explicit (Pix2Pix) or implicit pseudo-paired runs"
    left = len(good) - len(keep)
    note = (f"{VIEWS[view]} shows only {what}; {left} selected run(s) are left out." if left else "")
    if not keep and good:
        note = f"None of the selected runs fit {VIEWS[view]}: it needs {what}."
    return sort_runs(keep, by) + bad, by, note


def clean_error(name: str, message: str) -> str:
    """One sentence for a run's problem: an unreadable checkpoint's library detail is replaced by what to do."""
    m = re.match(r"Checkpoint (\S+) is unreadable", message or "")
    if m:
        return (f"Run {name}'s checkpoint {m.group(1)} is unreadable (corrupt or truncated), so it is left out; "
                "resume the run to write a new one or evaluate an older checkpoint.")
    return message


# ================================================================================ the image grid
def _wrap(draw, text: str, font, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        trial = f"{line} {w}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = w
    if line:
        lines.append(line)
    return lines[:3]


OUTLINE_COLOR = (255, 0, 255)


def region_outline(mask: np.ndarray, cell: int) -> np.ndarray:
    """(cell, cell) bool: the boundary of a (H, W) region mask scaled to the cell (nearest), a line about
    cell / 96 pixels wide (at least 1) just inside the region."""
    from .metrics import dilate

    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros((cell, cell), dtype=bool)
    rows = (np.arange(cell) * m.shape[0] // cell)
    cols = (np.arange(cell) * m.shape[1] // cell)
    up = m[rows][:, cols]
    width = max(1, cell // 96)
    eroded = ~dilate(~up[None], width)[0]
    return up & ~eroded


def compose_grid(columns: list[str], cells: list[list[np.ndarray | None]], cell: int = 128,
                 row_labels: list[str] | None = None, masks: list[np.ndarray | None] | None = None) -> Image.Image:
    """One PNG: a header row with the column names, then one row of images per sample (None leaves a grey cell).
    ``masks``: one region mask (H, W) or None per row, outlined in ``OUTLINE_COLOR`` on every image of its row."""
    pad, font = 4, load_font(max(10, cell // 10))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [_wrap(probe, c, font, cell - 2) for c in columns]
    line_h = int(font.size * 1.25) if hasattr(font, "size") else 12
    header_h = line_h * max([len(w) for w in wrapped] + [1]) + 2 * pad
    label_w = 0
    if row_labels:
        label_w = int(max(probe.textlength(r, font=font) for r in row_labels)) + 2 * pad
    width = label_w + len(columns) * (cell + pad) + pad
    height = header_h + len(cells) * (cell + pad) + pad
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for j, lines in enumerate(wrapped):
        x0 = label_w + pad + j * (cell + pad)
        for k, line in enumerate(lines):
            tw = draw.textlength(line, font=font)
            draw.text((x0 + (cell - tw) / 2, pad + k * line_h), line, fill="black", font=font)
    for i, row in enumerate(cells):
        y0 = header_h + i * (cell + pad)
        if row_labels:
            draw.text((pad, y0 + cell / 2 - line_h / 2), row_labels[i], fill="#444", font=font)
        for j, arr in enumerate(row):
            x0 = label_w + pad + j * (cell + pad)
            if arr is None:
                draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill="#d0d0d0")
                continue
            tile = np.asarray(Image.fromarray(np.asarray(arr, dtype=np.uint8)).resize((cell, cell), Image.NEAREST))
            if masks is not None and masks[i] is not None:
                tile = tile.copy()
                tile[region_outline(masks[i], cell)] = OUTLINE_COLOR
            img.paste(Image.fromarray(tile), (x0, y0))
    return img


def build_grid(run_dirs, rows: int = 6, seed: int | None = 0, page: int = 0, by: str = "alpha",
               direction: str = "AtoB", cell: int = 128, described: list[dict] | None = None,
               checkpoint="latest", progress=None, device: str = "auto", outline: bool = False) -> dict:
    """Rows are test samples (``rows`` per page; shuffled with ``seed``, or in order when seed is None), columns are
    the source, each usable run (ordered by alpha or recipe) and the ground truth when known. ``outline=True`` draws
    the attribute region (``metrics.attribute_region`` of the source and its truth) on every image of a row that
    has a truth; "outlined" says how many rows got one.

    Returns {"image": PIL image or None, "columns", "samples", "pages", "page", "problems": {run name: sentence}}.
    Runs that cannot be translated are left out with their sentence; the others still show.
    """
    progress = progress or (lambda f, m: None)
    described = described if described is not None else describe_runs(run_dirs)
    problems = {d["name"]: d["error"] for d in described if d.get("error")}
    usable = [d for d in described if not d.get("error")] if by is None else \
        sort_runs([d for d in described if not d.get("error")], by)
    sets = []
    for k, d in enumerate(usable):
        try:
            sets.append((d, translate_test_set(d["run"], checkpoint, direction, device=device,
                                               progress=lambda f, m, k=k: progress((k + f) / max(1, len(usable)), m))))
        except UserError as exc:
            problems[d["name"]] = clean_error(d["name"], str(exc))
    if not sets:
        return {"image": None, "columns": [], "samples": [], "pages": 0, "page": 0, "problems": problems}
    # the test samples every run translated (same composition test set or overlapping ones)
    names = [it.name for it in sets[0][1].items]
    common = set(names)
    for _, out in sets[1:]:
        common &= {it.name for it in out.items}
    names = [n for n in names if n in common]
    if not names:
        problems["grid"] = "The selected runs share no test images, so no grid rows can be shown."
        return {"image": None, "columns": [], "samples": [], "pages": 0, "page": 0, "problems": problems}
    if seed is not None:
        random.Random(int(seed)).shuffle(names)
    rows = max(1, int(rows))
    pages = (len(names) + rows - 1) // rows
    page = max(0, min(int(page), pages - 1))
    chosen = names[page * rows:(page + 1) * rows]
    index = [{it.name: i for i, it in enumerate(out.items)} for _, out in sets]
    first = sets[0][1]
    has_truth = any(first.items[index[0][n]].truth is not None for n in chosen)
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    columns = [f"source ({src})"] + [column_label(d) for d, _ in sets] + ([f"ground truth ({dst})"] if has_truth else [])
    cells, masks = [], []
    from .metrics import attribute_region

    for n in chosen:
        i0 = index[0][n]
        row = [first.load("input", [i0])[0]]
        for (d, out), idx in zip(sets, index):
            row.append(out.load("output", [idx[n]])[0])
        truth = first.load("truth", [i0])[0] if first.items[i0].truth is not None else None
        if has_truth:
            row.append(truth)
        cells.append(row)
        masks.append(attribute_region(row[0][None], truth[None])[0] if outline and truth is not None else None)
    image = compose_grid(columns, cells, cell=cell, row_labels=[Path(n).stem for n in chosen],
                         masks=masks if outline else None)
    return {"image": image, "columns": columns, "samples": chosen, "pages": pages, "page": page,
            "problems": problems, "runs": [d["name"] for d, _ in sets],
            "outlined": sum(1 for m in masks if m is not None and m.any())}


# ================================================================================ tables and plots
BASELINE_RECIPE = "baseline"


def _rank(r: dict) -> int:
    """Table order: runs, then the input-unchanged baseline, then rows that failed."""
    if not r.get("ok", True):
        return 2
    return 1 if is_baseline(r) else 0


def comparison_table(results: list[dict], by: str = "alpha", aggregate: bool = False,
                     ci: bool = True, split: bool = False, mark_best: bool = False) -> tuple[list[str], list[list[str]]]:
    """``metrics_table`` rows ordered by alpha / recipe, with a 'recipe' column; aggregate=True: one row per group of
    runs that differ only by seed (mean over seeds with the t-interval), plus a 'seeds' column. The
    input-unchanged baseline rows (recipe 'baseline') follow the runs, and the rows of runs that failed come last."""
    ordered = sorted(results, key=lambda r: (_rank(r), order_key(r, by) if _rank(r) == 0 else ()))
    ordered = [r if r.get("ok", True) else dict(r, error=clean_error(r.get("name", "?"), r.get("error") or ""))
               for r in ordered]
    if aggregate:
        aggregated = aggregate_seeds([r for r in ordered if not is_baseline(r)])
        groups = sorted(aggregated, key=lambda g: order_key(g, by))
        base = [r for r in ordered if is_baseline(r) and r.get("ok", True)]
        bad = [r for r in ordered if not r.get("ok", True)]
        headers, rows = metrics_table(groups + base + bad, ci=ci, split=split, mark_best=mark_best)
        extra = [", ".join(str(s) for s in g["seeds"]) for g in groups] + [""] * (len(base) + len(bad))
        recipes = ([recipe_label(g.get("recipe"), g.get("alpha")) for g in groups] + [BASELINE_RECIPE] * len(base)
                   + [""] * len(bad))
        headers = headers[:1] + ["recipe", "seeds"] + headers[1:]
        rows = [r[:1] + [rc, s] + r[1:] for r, rc, s in zip(rows, recipes, extra)]
        return headers, rows
    headers, rows = metrics_table(ordered, ci=ci, split=split, mark_best=mark_best)
    recipes = [BASELINE_RECIPE if is_baseline(r) and r.get("ok", True) else
               recipe_label(r.get("recipe"), r.get("alpha")) if r.get("ok", True) else "" for r in ordered]
    headers = headers[:1] + ["recipe"] + headers[1:]
    rows = [r[:1] + [rc] + r[1:] for r, rc in zip(rows, recipes)]
    return headers, rows


def to_csv(headers: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                  "↓": r"$\downarrow$", "↑": r"$\uparrow$", "α": r"$\alpha$", "σ": r"$\sigma$", "−": "-"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text))


def to_latex(headers: list[str], rows: list[list[str]], caption: str = "", label: str = "tab:compare") -> str:
    """A booktabs table (needs \\usepackage{booktabs}); error rows span the metric columns; cells marked best
    (``BEST_MARK``) are set in bold."""
    lines = ["\\begin{table}[t]", "\\centering", "\\begin{tabular}{" + "l" * len(headers) + "}", "\\toprule",
             " & ".join(latex_escape(h) for h in headers) + " \\\\", "\\midrule"]
    best = BEST_MARK
    for r in rows:
        cells = [f"\\textbf{{{latex_escape(c[len(best):])}}}" if str(c).startswith(best) else latex_escape(c)
                 for c in r] + [""] * (len(headers) - len(r))
        lines.append(" & ".join(cells[:len(headers)]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    lines += [f"\\label{{{label}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def plot_series(results: list[dict], metric: str) -> list[dict]:
    """Plot data of one metric against alpha: one series per (model, recipe kind / augmentation, direction), one
    point per alpha with the mean over seeds and its error bar (t-interval of seed means; bootstrap with one seed)."""
    groups = [g for g in aggregate_seeds(results) if metric in g["metrics"] and g.get("alpha") is not None]
    series: dict[str, dict] = {}
    for g in sorted(groups, key=lambda g: float(g["alpha"])):
        recipe = g.get("recipe") or {}
        kind = recipe.get("kind", "?")
        if kind == "pseudo":
            kind = recipe.get("augmentation", "pseudo")
        name = f"{g.get('model')} {kind} {g.get('direction')}"
        s = g["metrics"][metric]
        if s.get("mean") is None:
            continue
        ser = series.setdefault(name, {"name": name, "x": [], "y": [], "err_low": [], "err_high": [], "seeds": [],
                                       "label": s.get("label", metric), "lower_is_better": s.get("lower_is_better")})
        ser["x"].append(float(g["alpha"]))
        ser["y"].append(s["mean"])
        lo, hi = s.get("ci_low"), s.get("ci_high")
        ser["err_low"].append(0.0 if lo is None else max(0.0, s["mean"] - lo))
        ser["err_high"].append(0.0 if hi is None else max(0.0, hi - s["mean"]))
        ser["seeds"].append(s.get("seeds", 1))
    return list(series.values())


def baseline_lines(results: list[dict], metric: str) -> list[dict]:
    """The input-unchanged baseline of one metric as horizontal reference lines for the plot against alpha:
    [{"name", "y", "ci_low", "ci_high", "label", "lower_is_better"}], one per baseline row that has the metric."""
    out = []
    for r in results:
        s = (r.get("metrics") or {}).get(metric) if is_baseline(r) and r.get("ok", True) else None
        if s and s.get("mean") is not None:
            out.append({"name": r.get("name"), "y": s["mean"], "ci_low": s.get("ci_low"), "ci_high": s.get("ci_high"),
                        "label": s.get("label", metric), "lower_is_better": s.get("lower_is_better")})
    return out


def plotted_metrics(results: list[dict]) -> list[str]:
    from .metrics import REGISTRY

    seen = Counter(m for r in results if r.get("ok") for m in r.get("metrics", {}))
    return [m for m in REGISTRY if m in seen] + [m for m in seen if m not in REGISTRY]
