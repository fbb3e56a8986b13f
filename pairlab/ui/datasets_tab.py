"""Datasets tab: choose a source and a recipe, preview the pairs, build compositions, list / open / delete them.

Thin: every action is one call into ``pairlab.lab`` / ``pairlab.data.compose``.
"""
from __future__ import annotations

import gradio as gr

import plotly.graph_objects as go

from .. import lab, papers
from ..errors import UserError
from .common import friendly, number, progress_adapter, to_status

SOURCE_KINDS = {
    "SynthFaces (embedded)": "synthfaces",
    "CelebA folder": "celeba",
    "Unaligned folders (trainA/trainB)": "unaligned",
    "Aligned A|B folders": "aligned",
}
PROVENANCE_COLORS = {"real": "#4c72b0", "truth": "#55a868", "natural": "#8172b2", "pseudo": "#dd4fa0"}


def open_source(kind_label, sf_count, sf_size, sf_seed, folder, progress=None):
    if kind_label not in SOURCE_KINDS:
        raise UserError(f"Choose a source kind: {', '.join(SOURCE_KINDS)}.")
    kind = SOURCE_KINDS[kind_label]
    if kind == "synthfaces":
        return lab.synthfaces_source(number(sf_count, "the SynthFaces image count", low=30, high=200_000),
                                     number(sf_size, "the SynthFaces size"),
                                     number(sf_seed, "the SynthFaces render seed", low=0, high=2**31 - 1),
                                     progress=progress)
    return lab.open_user_source(folder, kind)


SOURCE_FIELDS = ("kind_label", "sf_count", "sf_size", "sf_seed", "folder")  # open_source's parameters
RECIPE_FIELDS = ("kind", "task", "n", "alpha", "augmentation", "pseudo_alpha", "pairs_from", "n_test", "selection",
                 "paired_copies", "image_size", "seed", "disjoint_identities")  # Recipe's fields


def named(fields: tuple[str, ...], values: dict) -> dict:
    """{name: value} of the named ``fields`` from a handler's own parameters (``locals()``)."""
    return {key: values[key] for key in fields}


def form_recipe(values: dict):
    """The tab's Recipe from {Recipe field: widget value}; an empty box is "Please fill in ..." (not a default)."""
    return lab.Recipe.from_form(values, blank="error")


def makeup_figure(makeup: dict, alpha: float, title: str) -> go.Figure:
    """Stacked bars per training domain, coloured by provenance; paired parts hatched."""
    fig = go.Figure()
    for key, count in makeup.items():
        split, prov, paired = key.split("|")
        fig.add_bar(x=[split], y=[count], name=f"{prov} ({paired})", marker_color=PROVENANCE_COLORS.get(prov, "#999"),
                    marker_pattern_shape="/" if paired == "paired" else "", hovertemplate=f"{split}: %{{y}} {prov}, {paired}<extra></extra>")
    fig.update_layout(barmode="stack", title=dict(text=f"measured alpha = {alpha:.3f}<br><sup>{title}</sup>"), height=380,
                      margin=dict(l=40, r=10, t=50, b=30), legend_title_text="provenance")
    return fig


def source_summary(source) -> str:
    d = source.describe()
    parts = d["partitions"]
    lines = [f"**{d['name']}** ({d['kind']}): {d['images']} images — train {parts['train']}, val {parts['val']}, test {parts['test']}",
             f"knows: {', '.join(d['knows']) or 'nothing beyond the images'}; fingerprint `{d['fingerprint']}`"]
    if d["skipped"]:
        shown = "; ".join(f"`{n}`: {r}" for n, r in source.skipped[:3])
        more = f" and {d['skipped'] - 3} more" if d["skipped"] > 3 else ""
        lines.append(f"skipped {d['skipped']} file(s): {shown}{more}")
    lines += [f"note: {n}" for n in d["notes"]]
    return "  \n".join(lines)


def composition_table():
    rows = lab.list_compositions()
    header = ["name", "task", "recipe", "alpha", "trainA", "trainB", "testA", "source", "seed"]
    return [[r[h] for h in header] for r in rows], [r["name"] for r in rows]


def build_tab():
    with gr.Tab("Datasets", id="datasets") as tab:
        gr.Markdown("Build **alpha-paired** datasets (a share alpha of the images keep their true pair) from paired "
                    "data, and **pseudo-paired** datasets, where a synthesizer M ≈ T⁻¹ adds the attribute to images "
                    f"that lack it ({papers.IMPLICIT_PAIRS}, Sec. 3 and 5). A = with the attribute, B = without.")
        with gr.Row():
            with gr.Column(scale=1):
                gr.Markdown("### Source")
                kind = gr.Radio(list(SOURCE_KINDS), value="SynthFaces (embedded)", label="Source", elem_id="ds-source-kind")
                with gr.Group(visible=True) as sf_box:
                    sf_count = gr.Number(value=lab.DEFAULT_SYNTHFACES["count"], label="SynthFaces images", elem_id="ds-sf-count")
                    sf_size = gr.Dropdown([64, 128, 256], value=lab.DEFAULT_SYNTHFACES["size"], label="SynthFaces size (px)", elem_id="ds-sf-size")
                    sf_seed = gr.Number(value=lab.DEFAULT_SYNTHFACES["seed"], label="SynthFaces render seed")
                folder = gr.Textbox(label="Folder (under the workspace or PAIRLAB_DATA_ROOTS)", visible=False, elem_id="ds-folder")
                open_btn = gr.Button("Open source", elem_id="ds-open")
                source_info = gr.Markdown("", elem_id="ds-source-info")
            with gr.Column(scale=1):
                gr.Markdown("### Recipe")
                task = gr.Radio(["eyeglasses", "smile", "folders"], value="eyeglasses", label="Task (removal: A → B)", elem_id="ds-task")
                recipe_kind = gr.Radio(list(lab.KINDS), value="pseudo", label="Recipe", elem_id="ds-recipe")
                # typed numbers, not sliders: a slider clamps what is typed (1.5 -> 1) without a word; these are checked
                alpha = gr.Number(value=0.5, step=0.05, label="alpha (0-1: share of A with its true pair in B)", visible=False, elem_id="ds-alpha")
                augmentation = gr.Dropdown(list(lab.AUGMENTATIONS), value="pseudo-paired", label="Augmentation of A", elem_id="ds-augmentation")
                pseudo_alpha = gr.Number(value=0.5, step=0.05, label=f"pseudo alpha (0-1; the implicit-pairs paper used: {', '.join(map(str, lab.PAPER_PSEUDO_ALPHAS))})", elem_id="ds-pseudo-alpha")
                pairs_from = gr.Radio(["pseudo", "true"], value="pseudo", label="Explicit pairs from", visible=False)
                with gr.Row():
                    n = gr.Number(value=100, label="N per domain", elem_id="ds-n")
                    n_test = gr.Number(value=50, label="test images per domain", elem_id="ds-ntest")
                    seed = gr.Number(value=0, label="seed", elem_id="ds-seed")
                with gr.Accordion("More options", open=False):
                    selection = gr.Radio(["random", "kmedoids"], value="random", label="Which samples get pairs")
                    copies = gr.Number(value=0, label="extra copies of each paired sample, to balance few pairs against many unpaired images "
                                                   f"({papers.plain(papers.FEW_PAIRS_SHORT)}, Sec. 4.1.5)")
                    disjoint = gr.Checkbox(value=True, label="alpha-paired: B's unpaired part from identities not in A",
                                           elem_id="ds-disjoint")
                    image_size = gr.Dropdown([0, 64, 128, 256], value=0, label="resize to (0 = keep the source's size)")
                    name = gr.Textbox(label="name (optional)")
                with gr.Row():
                    preview_btn = gr.Button("Preview", elem_id="ds-preview")
                    build_btn = gr.Button("Build composition", variant="primary", elem_id="ds-build")
        status = gr.Markdown("", elem_id="ds-status")
        with gr.Row():
            gallery = gr.Gallery(label="Pairs: pseudo-sample M(b) | real b, or a | T(a)", columns=3, height=380,
                                 object_fit="contain", elem_id="ds-gallery")
            chart = gr.Plot(label="Make-up by provenance", elem_id="ds-chart")
        gr.Markdown("### Built compositions")
        table = gr.Dataframe(headers=["name", "task", "recipe", "alpha", "trainA", "trainB", "testA", "source", "seed"],
                             interactive=False, elem_id="ds-table", wrap=False, max_height=400,
                             column_widths=["34%", "9%", "9%", "6%", "7%", "7%", "6%", "16%", "6%"])
        with gr.Row():
            chosen = gr.Dropdown([], label="Composition", elem_id="ds-chosen", scale=3)
            refresh_btn = gr.Button("Refresh", scale=1)
            open_comp_btn = gr.Button("Open", scale=1, elem_id="ds-open-comp")
            delete_btn = gr.Button("Delete", variant="stop", scale=1, elem_id="ds-delete")
        comp_info = gr.Markdown("")
        comp_gallery = gr.Gallery(label="Composition images (trainA, then trainB)", columns=8, height=240, elem_id="ds-comp-gallery")

        # Named inputs: handlers take the set of components and read each value by its name (Recipe field names
        # for the recipe, open_source's parameters for the source), never by position.
        recipe_fields = {"kind": recipe_kind, "task": task, "n": n, "alpha": alpha, "augmentation": augmentation,
                         "pseudo_alpha": pseudo_alpha, "pairs_from": pairs_from, "n_test": n_test, "selection": selection,
                         "paired_copies": copies, "image_size": image_size, "seed": seed, "disjoint_identities": disjoint}
        source_fields = {"kind_label": kind, "sf_count": sf_count, "sf_size": sf_size, "sf_seed": sf_seed, "folder": folder}
        assert tuple(source_fields) == SOURCE_FIELDS and tuple(recipe_fields) == RECIPE_FIELDS
        # each handler's parameters are these names, in this order (read by name, never sliced by position)
        source_inputs = list(source_fields.values())
        recipe_inputs = list(recipe_fields.values())

        def on_kind(label):
            synth = SOURCE_KINDS[label] == "synthfaces"
            return gr.update(visible=synth), gr.update(visible=not synth)

        kind.change(on_kind, kind, [sf_box, folder])

        def on_recipe(k, aug):
            return (gr.update(visible=k == "alpha-paired"), gr.update(visible=k == "pseudo"),
                    gr.update(visible=k == "pseudo" and aug == "pseudo-paired"), gr.update(visible=k == "explicit"))

        recipe_kind.change(on_recipe, [recipe_kind, augmentation], [alpha, augmentation, pseudo_alpha, pairs_from])
        augmentation.change(on_recipe, [recipe_kind, augmentation], [alpha, augmentation, pseudo_alpha, pairs_from])

        @friendly
        def do_open(kind_label, sf_count, sf_size, sf_seed, folder, progress=gr.Progress()):
            return source_summary(open_source(**named(SOURCE_FIELDS, locals()), progress=progress_adapter(progress)))

        def do_open_status(*args, progress=gr.Progress()):
            return do_open(*args, progress=progress), ""

        open_btn.click(to_status(do_open_status, 2, 1), source_inputs, [source_info, status])

        @friendly
        def do_preview(kind_label, sf_count, sf_size, sf_seed, folder, kind, task, n, alpha, augmentation,
                       pseudo_alpha, pairs_from, n_test, selection, paired_copies, image_size, seed,
                       disjoint_identities, progress=gr.Progress()):
            given = locals()
            rec = form_recipe(named(RECIPE_FIELDS, given))
            source = open_source(**named(SOURCE_FIELDS, given), progress=progress_adapter(progress, 0, 0.5))
            progress(0.6, desc="Planning the composition")
            p = lab.preview(source, rec, count=9)
            skipped = ", ".join(f"{c} {r}" for r, c in p["skipped"].items())
            msg = f"Preview of **{rec.short_name()}**: measured alpha {p['alpha_measured']:.3f}" + (f"; skipped {skipped}" if skipped else "")
            return p["examples"], makeup_figure(p["makeup"], p["alpha_measured"], "planned"), msg, source_summary(source)

        preview_btn.click(to_status(do_preview, 4, 2), source_inputs + recipe_inputs, [gallery, chart, status, source_info])

        @friendly
        def do_build(kind_label, sf_count, sf_size, sf_seed, folder, kind, task, n, alpha, augmentation,
                     pseudo_alpha, pairs_from, n_test, selection, paired_copies, image_size, seed,
                     disjoint_identities, composition_name, progress=gr.Progress()):
            given = locals()
            rec = form_recipe(named(RECIPE_FIELDS, given))
            source = open_source(**named(SOURCE_FIELDS, given), progress=progress_adapter(progress, 0, 0.3))
            nm = (composition_name or "").strip()
            path = lab.build_composition(source, rec, name=nm or None, progress=progress_adapter(progress, 0.3, 0.7))
            note = lab.name_note(nm, path.name, lab.default_name(source, rec))
            m = lab.load_manifest(path)
            examples = lab.preview(source, rec, count=9)["examples"]
            rows, names = composition_table()
            c = m["counts"]
            report = lab.skip_report(path, limit=3)
            msg = (f"Built **{path.name}**: trainA {c['trainA']}, trainB {c['trainB']}, testA {c['testA']}, testB {c['testB']}, "
                   f"measured alpha {m['alpha_measured']:.3f}" + (f"  \n{note}" if note else "")
                   + ("  \n" + "  \n".join(report) if report else ""))
            return (examples, makeup_figure(lab.makeup(m), m["alpha_measured"], path.name), msg, rows,
                    gr.update(choices=names, value=path.name), path.name)

        built = gr.State(None)  # the just-built composition's name (None after a failed build): opened next
        build_event = build_btn.click(to_status(do_build, 6, 2), source_inputs + recipe_inputs + [name],
                                      [gallery, chart, status, table, chosen, built])

        def do_refresh():
            rows, names = composition_table()
            return rows, gr.update(choices=names, value=names[-1] if names else None)

        refresh_btn.click(do_refresh, None, [table, chosen])
        tab.select(do_refresh, None, [table, chosen])  # compositions built elsewhere (CLI, experiments) show up

        @friendly
        def do_open_comp(comp_name):
            if not comp_name:
                raise UserError("Choose a composition first.")
            from .. import workspace

            path = workspace.sub("compositions") / comp_name
            m = lab.load_manifest(path)
            imgs = [(str(path / "trainA" / e["file"]), f"A {e['provenance']}{' paired' if e.get('pair') else ''}") for e in m["images"]["trainA"][:16]]
            imgs += [(str(path / "trainB" / e["file"]), f"B {e['provenance']}") for e in m["images"]["trainB"][:8]]
            r = m["recipe"]
            info = (f"**{comp_name}** — recipe `{r['kind']}`, task {m['task']}, seed {m['seed']}, source {m['source']['name']} "
                    f"(`{m['source']['fingerprint']}`), measured alpha {m['alpha_measured']:.3f}, image size {m['image_size']}, "
                    f"ground truth for test images: {'yes' if m.get('has_truth') else 'no'}  \nfolder: `{path}`")
            return info, imgs, makeup_figure(lab.makeup(m), m["alpha_measured"], comp_name), ""

        comp_outs = [comp_info, comp_gallery, chart, status]
        open_comp_btn.click(to_status(do_open_comp, 4, 3), chosen, comp_outs)
        chosen.input(to_status(do_open_comp, 4, 3), chosen, comp_outs)

        def open_built(built_name):
            if not built_name:  # the build failed: its sentence stays in the status line
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), None
            info, imgs, fig, _ = do_open_comp(built_name)
            return info, imgs, fig, gr.skip(), None

        build_event.then(to_status(open_built, 5, 3), built, comp_outs + [built])

        # Delete is two steps: the first click asks, a second click on the same composition deletes.
        armed = gr.State(None)

        def do_delete(comp_name, armed_name):
            if not comp_name:
                raise UserError("Choose a composition first.")
            if armed_name != comp_name:
                return (gr.skip(), gr.skip(), gr.skip(), f"Delete **{comp_name}** and its images? Click **Confirm delete** to delete it.",
                        comp_name, gr.update(value="Confirm delete"))
            lab.delete_composition(comp_name)
            rows, names = composition_table()
            return rows, gr.update(choices=names, value=None), "", f"Deleted {comp_name}.", None, gr.update(value="Delete")

        delete_btn.click(to_status(do_delete, 6, 3), [chosen, armed], [table, chosen, comp_info, status, armed, delete_btn])

        def disarm():
            return None, gr.update(value="Delete")

        chosen.change(disarm, None, [armed, delete_btn])
    return {"table": table, "chosen": chosen, "refresh": do_refresh}
