"""Demo tab: upload a face photo (or use the webcam), choose up to four checkpoints (shipped or finished runs) and see
their translations side by side with the time each took; optionally the synthesizer's pseudo-sample of the input;
download everything as a zip.

Thin: ``pairlab.demo.translate`` does the work (MTCNN alignment onto each checkpoint's landmark template, the
translation, the files); a problem with the photo or a checkpoint is one sentence in the status line and the tab
keeps serving: every problem (no photo, a file that is not an image, no face, no checkpoint, a checkpoint that
cannot be used, anything unexpected) is one sentence in the one status line, and the outputs keep their last good
content (the status says they are from the previous photo).
"""
from __future__ import annotations

import html
import secrets
import sys
import shutil
import time
import traceback
from pathlib import Path

import gradio as gr

from .. import lab, workspace
from ..errors import UserError

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "demo_faces"
KEEP_RESULTS = 20  # result folders kept under cache/demo/ (the download of each recent translation)


def checkpoint_choices() -> list[tuple[str, str]]:
    return [(ref.label, ref.key) for ref in lab.list_checkpoints()]


def example_faces() -> list[str]:
    return [str(p) for p in sorted(ASSETS.glob("*.jpg"))] if ASSETS.is_dir() else []


def _results_dir() -> Path:
    root = workspace.sub("cache") / "demo"
    root.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    for p in old[:-KEEP_RESULTS] if len(old) >= KEEP_RESULTS else []:
        shutil.rmtree(p, ignore_errors=True)
    out = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    out.mkdir()
    return out


def _safe_preprocess(component: gr.Image):
    """Let a file that PIL cannot even open reach the handler, which says in one sentence what is wrong with it
    (Gradio's own preprocessing would fail with a generic error)."""
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except Exception:
            path = getattr(payload, "path", None)
            if not path:
                raise
            return str(path)

    component.preprocess = preprocess
    return component


def _status(text: str, problem: bool = False) -> str:
    return ("⚠️ " if problem else "") + html.escape(text)


GAP_NOTE = ("**Trained on synthetic faces.** The shipped models learnt from SynthFaces, pairlab's rendered faces, "
            "so expect weaker results on real photos (the synthetic-to-real gap): try the example photos first, "
            "and train on CelebA in the Training tab for real faces.")


def build_tab() -> dict:
    with gr.Tab("Demo", id="demo"):
        gr.Markdown("Upload a face photo or take one with the webcam. The face is found with MTCNN (outlined below) "
                    "and aligned onto the landmarks of each checkpoint's training crops; each checkpoint then "
                    "translates it (A = with the attribute, e.g. eyeglasses; B = without).")
        gr.Markdown(GAP_NOTE, elem_id="demo-gap-note")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                # image_mode=None: Gradio passes the file as uploaded (no decode / conversion of its own), and
                # pairlab's safe reader checks it (size limits, decompression bombs, EXIF orientation).
                image = _safe_preprocess(gr.Image(label="Face photo", sources=["upload", "webcam"], type="filepath",
                                                  image_mode=None, elem_id="demo-input", height=280))
                with gr.Row():
                    ckpts = gr.Dropdown(label="Checkpoints (up to four)", multiselect=True, max_choices=lab.MAX_CHECKPOINTS,
                                        choices=[], elem_id="demo-checkpoints", scale=3)
                    refresh = gr.Button("↻", scale=0, min_width=40, elem_id="demo-refresh")
                direction = gr.Radio([("A → B (remove)", "AtoB"), ("B → A (add)", "BtoA")], value="AtoB",
                                     label="Direction", elem_id="demo-direction", visible=False)
                with gr.Row():
                    pseudo = gr.Checkbox(label="Also show the synthesizer's pseudo-sample M(x) of the face (the pseudo-pair)",
                                         value=False, elem_id="demo-pseudo", scale=3)
                    reroll = gr.Button("New M(x) (re-roll)", scale=1, min_width=110, elem_id="demo-reroll",
                                       size="sm")
                seed = gr.State(0)      # the pseudo-sample's seed (the re-roll button draws the next one)
                shown = gr.State("")    # the photo whose results are on the page (for the status sentence)
                go = gr.Button("Translate", variant="primary", elem_id="demo-translate")
                status = gr.Markdown("", elem_id="demo-status")
                faces = example_faces()
                if faces:
                    gr.Examples(examples=[[f] for f in faces], inputs=[image], label="Example photos (SynthFaces)",
                                examples_per_page=8)
            with gr.Column(scale=2):
                with gr.Row():
                    detected = gr.Image(label="The face used (outlined)", interactive=False, type="numpy",
                                        format="png", elem_id="demo-detected", height=260, scale=1, min_width=200)
                    aligned = gr.Image(label="Aligned crop (what the models see)", interactive=False, type="numpy",
                                       format="png", elem_id="demo-aligned", height=260, scale=1, min_width=200)
                # No fixed height: the gallery grows with its rows (four checkpoints and M(x) are two rows of
                # three), so no row is cut off behind a scrollbar.
                gallery = gr.Gallery(label="Translations (time: the model's forward pass)", elem_id="demo-results",
                                     columns=3, object_fit="contain", format="png", allow_preview=True)
                download = gr.File(label="Download: aligned crop, results and timings.json (zip)", interactive=False,
                                   elem_id="demo-download")

        # ----- handlers ---------------------------------------------------------------------------------
        def do_refresh(current):
            choices = checkpoint_choices()
            keys = {k for _, k in choices}
            value = [c for c in (current or []) if c in keys]
            if not value and choices:  # something to translate with straight away: the shipped ones side by side
                value = [k for _, k in choices if k.startswith("shipped:")][:lab.MAX_CHECKPOINTS] or [choices[0][1]]
            return gr.update(choices=choices, value=value)

        def do_directions(keys):
            """Show the direction only when a chosen checkpoint can translate both ways."""
            both = False
            for k in keys or []:
                try:
                    both = both or len(lab.directions_of(lab.resolve_checkpoint(k))) > 1
                except UserError:
                    continue
            return gr.update(visible=both) if both else gr.update(visible=False, value="AtoB")

        outputs = [detected, aligned, gallery, download, status, shown]

        def do_translate(path, keys, dr, show_pseudo, seed_value, shown_name, progress=gr.Progress()):
            """Translate; on any problem only the status line changes (one sentence) and the rest keeps its last
            good content, so no component is left empty or in an error state."""
            try:
                return translate_or_say(path, keys, dr, show_pseudo, int(seed_value or 0), progress)
            except UserError as exc:
                return keep(str(exc), shown_name)
            except Exception as exc:  # keep serving; say what happened in one sentence, the traceback to the log
                traceback.print_exc(file=sys.stderr)
                return keep(f"Unexpected error ({type(exc).__name__}): {exc}", shown_name)

        def keep(text, shown_name):
            tail = f" (the results shown are still those of {shown_name})" if shown_name else ""
            sentence = text.rstrip(".") + tail + "."
            return (gr.update(),) * 4 + (_status(sentence, True), shown_name)

        def translate_or_say(path, keys, dr, show_pseudo, seed_value, progress):
            if not path:
                raise UserError("Upload a photo or take one with the webcam first")
            if not keys:
                if not checkpoint_choices():
                    raise UserError("There are no checkpoints yet: finish a training run in the Training tab, or "
                                    "build the shipped demo checkpoints with python -m pairlab demo build")
                raise UserError("Choose at least one checkpoint to translate with")
            progress(0.1, desc="Finding the face and translating")
            res = lab.translate_image(path, list(keys), direction=dr or "AtoB", pseudo=bool(show_pseudo),
                                      name=Path(path).name, seed=seed_value)
            out = _results_dir()
            stem = workspace.safe_name(Path(path).stem)[:40] or "face"
            files = lab.save_result(res, out, stem)
            timings = {"input": Path(path).name, "message": res.message, "align_ms": round(res.align_ms, 2),
                       "faces": res.face.n_faces, "direction": dr, "pseudo_seed": seed_value, "files": files,
                       "checkpoints": {t.label: t.key for t in res.items},
                       "errors": {t.label: t.error for t in res.items if t.image is None}}
            workspace.write_json_atomic(out / "timings.json", timings)
            zip_path = lab.zip_files(out, [f["file"] for f in files] + ["timings.json"], out / f"{stem}-demo.zip")
            problem = any(t.image is None for t in res.items)
            text = f"{res.message} Alignment took {res.align_ms:.0f} ms."
            return (res.outlined, res.first_crop, res.gallery(), str(zip_path), _status(text, problem),
                    Path(path).name)

        def do_reroll(path, keys, dr, seed_value, shown_name, progress=gr.Progress()):
            """Draw M(x) again with a new seed (and show it)."""
            new = int(seed_value or 0) + 1
            return (new, True) + tuple(do_translate(path, keys, dr, True, new, shown_name, progress))

        refresh.click(do_refresh, [ckpts], [ckpts])
        ckpts.change(do_directions, [ckpts], [direction])
        go.click(do_translate, [image, ckpts, direction, pseudo, seed, shown], outputs)
        reroll.click(do_reroll, [image, ckpts, direction, seed, shown], [seed, pseudo] + outputs)

        def load():
            return do_refresh([])

    return {"load": load, "load_outputs": [ckpts]}
