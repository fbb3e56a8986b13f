"""What the lab's Gradio server may hand out: only the files the pages show, never the workspace itself.

Gradio copies every file a handler returns (composition images, run samples, plots, exports, zips) into its
upload cache (``GRADIO_TEMP_DIR``, by default ``<tmp>/gradio``) and the page fetches that copy through
``/gradio_api/file=<path>``. Left to itself Gradio would also serve every file under ``allowed_paths`` directly,
so a workspace given there would expose the study secret (``studies/.secret``), the plans that unblind a study,
``votes.sqlite``, checkpoints and configs to anyone who reaches the lab.

So the lab puts the workspace in ``allowed_paths`` only so that handlers may *return* its images (Gradio copies
them), puts the secret-bearing files in ``blocked_paths`` (they can never even be copied), and wraps the app in
:class:`ServeOnlyHandedOut`, which answers 404 to every ``file=`` request whose resolved path is not inside the
upload cache (or one of Gradio's own static paths) and to every ``proxy=`` request. Percent-encoded slashes,
``..``, symlinks and doubled slashes are resolved before the check, exactly as Gradio resolves them itself.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

_FILE_ROUTE = re.compile(r"/(file|proxy)=(.*)$", re.S)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def served_roots() -> list[str]:
    """Real paths under which ``file=`` may serve: Gradio's upload cache (where handed-out copies live)."""
    from gradio.utils import get_upload_folder

    roots = [os.path.realpath(get_upload_folder())]
    try:  # files marked static with gr.set_static_paths (none in pairlab today)
        from gradio.data_classes import _StaticFiles

        roots += [os.path.realpath(p) for p in _StaticFiles.all_paths]
    except (ImportError, AttributeError):
        pass
    return roots


def is_served(requested: str) -> bool:
    """May ``/file=<requested>`` be answered? Only a regular file inside a served root, after resolving."""
    text = unquote(requested)  # a second round of %-decoding: %252F -> %2F -> /
    if not text or "\x00" in text or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text):
        return False  # empty, NUL, or a URL (http:, file:, ...): never fetched on a visitor's behalf
    real = os.path.realpath(os.path.abspath(text))
    if not os.path.isfile(real):
        return False
    for root in served_roots():
        if _inside(real, root):
            # below the served root, dotfiles and dot-folders (.secret, .tmp-*, .lab_password) never
            return not any(part.startswith(".") for part in Path(os.path.relpath(real, root)).parts)
    return False


class ServeOnlyHandedOut:
    """ASGI middleware: a ``file=`` request outside the upload cache, and any ``proxy=`` request, gets 404."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http":
            path = scope.get("path", "")
            m = _FILE_ROUTE.search(path)
            if m is None and "%" in path:
                m = _FILE_ROUTE.search(unquote(path))
            if m is not None and (m[1] == "proxy" or not is_served(m[2])):
                await send({"type": "http.response.start", "status": 404,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"cache-control", b"no-store")]})
                await send({"type": "http.response.body", "body": b"Not found."})
                return
        await self.app(scope, receive, send)


def blocked_paths(home: Path) -> list[str]:
    """Secret-bearing files of the workspace, refused by Gradio even as a handler's return value."""
    from .. import lab

    return [str(p) for p in lab.secret_files(home)]


def launch_kwargs(home: Path) -> dict:
    """The arguments of ``Blocks.launch`` that decide what the lab serves."""
    from starlette.middleware import Middleware

    return {"allowed_paths": [str(home)], "blocked_paths": blocked_paths(home),
            "app_kwargs": {"middleware": [Middleware(ServeOnlyHandedOut)]}}
