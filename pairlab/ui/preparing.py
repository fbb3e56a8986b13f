"""The page the lab's port answers while the app prepares its workspace (first start: the default SynthFaces, the
demo workspace), before Gradio can serve: "Preparing the workspace… x%", the current step, and a script that
reloads into the lab as soon as it answers.

A plain standard-library HTTP server on the lab's own address and port, so a new user's browser never meets
"connection refused": every request gets ``503 Service Unavailable`` with ``Retry-After`` (scripts and health
checks, like the tests' start-up wait, keep waiting for a 200), the page as HTML, or the progress as JSON when
asked with ``Accept: application/json``. :meth:`Preparing.close` frees the port just before Gradio takes it; the
page polls through the short gap and reloads when the lab answers 200. Nothing of the workspace is served: only
the step messages the start-up prints anyway.
"""
from __future__ import annotations

import html
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pairlab: preparing the workspace</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{font-family: system-ui, sans-serif; max-width: 40rem; margin: 12vh auto; padding: 0 1rem; color: #222}}
 progress {{width: 100%; height: 1.2rem}}
 #step {{color: #555; min-height: 1.5em}}
 small {{color: #777}}
</style></head>
<body>
<h1>pairlab</h1>
<h2 id="title">Preparing the workspace… <span id="pct">{pct}</span>%</h2>
<progress id="bar" max="100" value="{pct}"></progress>
<p id="step">{message}</p>
<p><small>First start: pairlab renders its embedded faces (SynthFaces) and installs a demo workspace with trained
runs, a comparison and an example study, so that every tab has something to show. This happens once; the page
opens the lab by itself when it is ready.</small></p>
<script>
async function poll() {{
  try {{
    const r = await fetch("/", {{cache: "no-store", headers: {{"Accept": "application/json"}}}});
    if (r.headers.get("X-Pairlab-Preparing")) {{
      const d = await r.json();
      const pct = Math.floor(100 * d.fraction);
      document.getElementById("pct").textContent = pct;
      document.getElementById("bar").value = pct;
      document.getElementById("step").textContent = d.message;
    }} else if (r.ok) {{ location.reload(); return; }}
  }} catch (e) {{ /* the port changes hands: try again */ }}
  setTimeout(poll, 1000);
}}
setTimeout(poll, 1000);
</script>
</body></html>
"""


class Preparing:
    """Serve the preparing page on ``host:port`` in a background thread until :meth:`close`.

    ``update(fraction, message)`` is a progress callback (fraction in [0, 1]); :meth:`phase` maps a step's own
    0..1 progress into a slice of the whole. Raises ``OSError`` if the port is taken.
    """

    def __init__(self, host: str, port: int):
        self.fraction, self.message, self.started = 0.0, "Starting…", time.time()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body_too: bool) -> None:
                if "application/json" in self.headers.get("Accept", ""):
                    body = json.dumps({"preparing": True, "fraction": state.fraction, "message": state.message,
                                       "seconds": round(time.time() - state.started, 1)}).encode()
                    kind = "application/json"
                else:
                    body = PAGE.format(pct=int(100 * state.fraction), message=html.escape(state.message)).encode()
                    kind = "text/html; charset=utf-8"
                self.send_response(503)
                for name, value in (("Content-Type", kind), ("Content-Length", str(len(body))),
                                    ("Retry-After", "2"), ("Cache-Control", "no-store"),
                                    ("X-Pairlab-Preparing", "1")):
                    self.send_header(name, value)
                self.end_headers()
                if body_too:
                    self.wfile.write(body)

            def do_GET(self):  # noqa: N802 (http.server's names)
                self._answer(True)

            def do_HEAD(self):  # noqa: N802
                self._answer(False)

            def log_message(self, *args):  # the start-up log has the steps already
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="pairlab-preparing", daemon=True)
        self.thread.start()

    def update(self, fraction: float, message: str) -> None:
        self.fraction = min(max(float(fraction), self.fraction), 1.0)  # never moves backwards
        self.message = str(message)

    def phase(self, start: float, end: float, label: str = ""):
        """A progress callback for one step that fills [start, end] of the bar."""
        def report(fraction: float, message: str) -> None:
            self.update(start + (end - start) * float(fraction), f"{label}{message}")
        return report

    def close(self) -> None:
        """Stop answering and free the port (for Gradio)."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
