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


def number(value, label: str, whole: bool = True, low: float | None = None, high: float | None = None):
    """A typed number field, checked: empty, not a number, not whole, or out of range is one sentence."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"Please fill in {label}.")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{label[0].upper() + label[1:]} must be a number, got {value!r}.")
    if x != x or x in (float("inf"), float("-inf")):
        raise UserError(f"{label[0].upper() + label[1:]} must be a finite number, got {value}.")
    if whole and x != int(x):
        raise UserError(f"{label[0].upper() + label[1:]} must be a whole number, got {value}.")
    if (low is not None and x < low) or (high is not None and x > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else (
            f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise UserError(f"{label[0].upper() + label[1:]} must be {bounds}, got {x:g}.")
    return int(x) if whole else x


def error_sentence(exc: BaseException) -> str:
    """The one sentence a user sees for ``exc`` (a UserError's text; anything else a short, typed message)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, gr.Error):
        return str(exc.message)
    traceback.print_exc(file=sys.stderr)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def to_status(fn, n_outputs: int, status_index: int, prefix: str = "⚠ "):
    """Wrap a handler with ``n_outputs`` outputs: an error becomes one line in the output at ``status_index``
    (the tab's status line) and every other output keeps its last good content (gr.skip()), so no component is
    left in an error state and nothing on the page is blanked."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error is one line; the app keeps serving
            out = [gr.skip() for _ in range(n_outputs)]
            out[status_index] = prefix + error_sentence(exc)
            return tuple(out) if n_outputs > 1 else out[0]

    return wrapper


def ids_hidden_css() -> str:
    """CSS for readable tables: no mid-word wrapping in cells."""
    return ".pl-table td, .pl-table th { word-break: normal !important; overflow-wrap: normal !important; }"
