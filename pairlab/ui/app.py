"""The lab app: one Gradio Blocks with a tab per capability that has landed."""
from __future__ import annotations

import gradio as gr

from .. import __version__, lab, workspace
from . import compare_tab, datasets_tab, features_tab, study_tab, training_tab
from . import demo_tab, experiments_tab

CSS = """
.gradio-container {max-width: 1400px !important}
#ds-status p {font-size: 1.05em}
#tr-sample img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
#cmp-grid img {object-fit: contain}
#demo-aligned img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
#demo-results img {image-rendering: pixelated}
#demo-results .caption-label {white-space: normal; max-width: 100%; left: var(--block-label-margin)}
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title="pairlab") as app:
        gr.Markdown(f"# pairlab <small>v{__version__}</small>\nImplicit pairs in image-to-image translation. "
                    f"Workspace: `{workspace.home()}`")
        # a demo workspace opens with a short "start here" panel until it is hidden
        with gr.Accordion("Start here", open=True, visible=False, elem_id="start-here") as start_box:
            start_text = gr.Markdown("", elem_id="start-here-text")
            hide_start = gr.Button("Hide this panel", size="sm", elem_id="start-here-hide")
        with gr.Tabs():
            ds = datasets_tab.build_tab()
            tr = training_tab.build_tab()
            cp = compare_tab.build_tab()
            ex = experiments_tab.build_tab()
            ft = features_tab.build_tab()
            st = study_tab.build_tab()
            dm = demo_tab.build_tab()
        app.load(ds["refresh"], None, [ds["table"], ds["chosen"]])
        app.load(tr["load"], None, tr["load_outputs"])
        app.load(cp["load"], None, cp["load_outputs"]).then(cp["reopen"], cp["reopen_inputs"], cp["reopen_outputs"])
        app.load(ft["load"], None, ft["load_outputs"]).then(ft["reopen"], ft["reopen_inputs"], ft["reopen_outputs"])
        app.load(st["refresh"], None, st["refresh_outputs"])
        app.load(dm["load"], None, dm["load_outputs"])
        app.load(ex["load"], None, ex["load_outputs"])
        app.load(show_start_here, None, [start_box, start_text])
        hide_start.click(hide_start_here, None, start_box)
    return app


def show_start_here():
    text = lab.start_here()
    return gr.update(visible=bool(text)), text or ""


def hide_start_here():
    lab.hide_start_here()
    return gr.update(visible=False)
