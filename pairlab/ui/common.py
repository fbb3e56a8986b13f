"""Small helpers every tab uses: turning errors into one sentence, and caching opened sources."""
from __future__ import annotations

import functools
import sys
import traceback

import gradio as gr

from ..errors import UserError


def friendly(fn):
    """Run a handler; a UserError becomes its one sentence in the UI, anything else a short message.

    The app keeps serving either way; unexpected errors also go to the server log with a traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False)
        except gr.Error:
            raise
        except Exception as exc:  # keep serving; say what happened in one sentence
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"Unexpected error ({type(exc).__name__}): {exc}", print_exception=False)

    return wrapper


def reopen_quietly(fn, outputs: list, status, what: str):
    """Wrap a handler for a page load: a gr.Error becomes a line in ``status`` instead of a pop-up."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            out = [gr.update() for _ in outputs]
            out[outputs.index(status)] = f"{what} could not be reopened: {exc.message}"
            return tuple(out)

    return run


def progress_adapter(progress: gr.Progress, start: float = 0.0, span: float = 1.0):
    """Adapt gr.Progress to pairlab's ``progress(fraction, message)`` callbacks."""

    def report(fraction: float, message: str) -> None:
        progress(start + span * max(0.0, min(1.0, fraction)), desc=message)

    return report
