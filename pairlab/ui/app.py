"""The lab app: one Gradio Blocks with a tab per capability that has landed."""
from __future__ import annotations

import gradio as gr

from .. import __version__, workspace
from . import compare_tab, datasets_tab, study_tab, training_tab

CSS = """
.gradio-container {max-width: 1400px !important}
#ds-status p {font-size: 1.05em}
#tr-sample img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
#cmp-grid img {object-fit: contain}
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title="pairlab") as app:
        gr.Markdown(f"# pairlab <small>v{__version__}</small>\nImplicit pairs in image-to-image translation. "
                    f"Workspace: `{workspace.home()}`")
        with gr.Tabs():
            ds = datasets_tab.build_tab()
            tr = training_tab.build_tab()
            cp = compare_tab.build_tab()
            st = study_tab.build_tab()
        app.load(ds["refresh"], None, [ds["table"], ds["chosen"]])
        app.load(tr["load"], None, tr["load_outputs"])
        app.load(cp["load"], None, cp["load_outputs"])
        app.load(st["refresh"], None, st["refresh_outputs"])
    return app
