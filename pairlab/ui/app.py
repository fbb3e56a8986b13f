"""The lab app: one Gradio Blocks with a tab per capability that has landed."""
from __future__ import annotations

import gradio as gr

from .. import __version__, workspace
from . import datasets_tab

CSS = """
.gradio-container {max-width: 1400px !important}
#ds-status p {font-size: 1.05em}
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title="pairlab") as app:
        gr.Markdown(f"# pairlab <small>v{__version__}</small>\nImplicit pairs in image-to-image translation. "
                    f"Workspace: `{workspace.home()}`")
        with gr.Tabs():
            ds = datasets_tab.build_tab()
        app.load(ds["refresh"], None, [ds["table"], ds["chosen"]])
    return app
