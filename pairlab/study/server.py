"""The participant page: a small FastAPI app (plain HTML + JS, no Gradio), served apart from the lab.

Routes (all under ``/study/<study_id>``; nothing else is served -- ``/`` and every Gradio route are 404):
    GET  /study/<id>                 the page: instructions and consent, then one trial at a time, then a code
                                     (a closed study refuses here at once, before instructions and consent;
                                     Prolific / MTurk ids in the link are checked here, see ``platforms``)
    POST /study/<id>/api/join        {"consent": true, "code": "optional participant code",
                                      "platform": {"PROLIFIC_PID": ..., ...}} -> {token, state}
    GET  /study/<id>/api/state?p=T   the participant's current trial (resume after a reload)
    POST /study/<id>/api/vote        {"p": T, "handle": H, "choice": "left|right|both|neither", "client_ms": 812}
    GET  /study/<id>/media/<name>    an image of the frozen study, by its opaque name only

The participant token T is in the URL (``?p=``) and in an HttpOnly cookie scoped to ``/study/<id>``, so a reload,
a dropped connection or the same link in another browser resumes where the participant was. The page measures the
response time from the moment all three images are shown to the answer (client_ms); the server measures from
serving the trial to receiving the vote (server_ms). Refusals are one sentence with an HTTP 4xx status.

Serve it on its own port (``serve_in_thread`` / ``python -m pairlab.study.server``), which keeps the lab out of
the participants' reach entirely, or add ``router(root)`` to another FastAPI app under the same ``/study/`` paths.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from . import platforms, session
from .store import VoteRefused

MEDIA_NAME = re.compile(r"^[0-9a-f]{24}\.png$")
STUDY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
CSP = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'")
MAX_BODY = 4096

# The page: a shell (styles, __BODY__, __SCRIPT__), the study's sections, and its script (with __CONFIG__), in assets/study/.
_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "study"
PAGE_SHELL = (_ASSETS / "page.html").read_text(encoding="utf-8")
PAGE_BODY = (_ASSETS / "participant.html").read_text(encoding="utf-8")
PAGE_SCRIPT = "<script>\n" + (_ASSETS / "participant.js").read_text(encoding="utf-8") + "</script>"


def cookie_name(study_id: str) -> str:
    return f"pairlab_p_{study_id}"


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


def _csp(platform: str) -> str:
    """The page's Content-Security-Policy; an MTurk study may post its form to MTurk's own address only."""
    if platform == "mturk":
        return CSP.replace("form-action 'none'", "form-action " + " ".join(platforms.MTURK_HOSTS))
    return CSP


def _message_page(message: str, status: int) -> HTMLResponse:
    body = PAGE_SHELL.replace("__BODY__", f'<div class="card"><p class="msg">{html.escape(message)}</p></div>')
    return HTMLResponse(body.replace("__SCRIPT__", ""), status_code=status, headers={**NO_STORE, "Content-Security-Policy": CSP})


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise VoteRefused("The request is too large.", 413)
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise VoteRefused("The request body is not valid JSON.", 400)
    if not isinstance(data, dict):
        raise VoteRefused("The request body must be a JSON object.", 400)
    return data


def router(root=None) -> APIRouter:
    """The participant routes, reading studies and votes from ``root`` (default: the workspace's studies/)."""
    r = APIRouter()
    holder: dict = {}

    def svc() -> session.StudyService:
        current = holder.get("svc")
        if current is None or current.store.closed:
            current = holder["svc"] = session.StudyService(root)
        return current

    @r.get("/study/{study_id}", response_class=HTMLResponse)
    def page(study_id: str, request: Request, p: str | None = None):
        if not STUDY_ID.match(study_id):
            return _message_page("This study link is not valid.", 404)
        service = svc()
        try:
            plan = service.plan(study_id)
            ids = platforms.parse_link(request.query_params)
        except (VoteRefused, platforms.PlatformRefused) as exc:
            return _message_page(str(exc), exc.status)
        if service.store.study_state(study_id) != "open":
            # refuse at once: only a participant who finished may still see their completion code
            pid = session.access.check_participant_token(service.key, study_id, p or request.cookies.get(cookie_name(study_id)))
            person = service.store.participant(study_id, pid) if pid else None
            if person is None or person["finished"] is None:
                return _message_page("This study is closed and takes no more answers.", 410)
        if not p and ids is None:
            remembered = request.cookies.get(cookie_name(study_id))
            if remembered and session.access.check_participant_token(service.key, study_id, remembered):
                return RedirectResponse(f"/study/{study_id}?p={remembered}", status_code=303, headers=NO_STORE)
        info = session.public_info(plan)
        config = {"base": f"/study/{study_id}", "info": info, "platform": platforms.public_ids(ids),
                  "preview": bool(ids and ids["preview"])}
        script = PAGE_SCRIPT.replace("__CONFIG__", json.dumps(config).replace("</", "<\\/"))
        body = PAGE_SHELL.replace("__BODY__", PAGE_BODY).replace("__SCRIPT__", script)
        csp = _csp(service.store.settings(study_id)["platform"])
        return HTMLResponse(body, headers={**NO_STORE, "Content-Security-Policy": csp})

    @r.post("/study/{study_id}/api/join")
    async def join(study_id: str, request: Request):
        try:
            data = await _json_body(request)
            if data.get("consent") is not True:
                raise VoteRefused("Please agree to take part before starting.", 422)
            token, state = await run_in_threadpool(svc().join, study_id, data.get("code"),
                                                   request.headers.get("user-agent", ""), data.get("platform"))
        except VoteRefused as exc:
            return _error(str(exc), exc.status)
        resp = JSONResponse({"token": token, "state": state}, headers=NO_STORE)
        resp.set_cookie(cookie_name(study_id), token, max_age=30 * 86400, path=f"/study/{study_id}", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
        return resp

    @r.get("/study/{study_id}/api/state")
    async def state(study_id: str, request: Request, p: str | None = None):
        token = p or request.cookies.get(cookie_name(study_id))
        try:
            return JSONResponse(await run_in_threadpool(svc().state, study_id, token), headers=NO_STORE)
        except VoteRefused as exc:
            return _error(str(exc), exc.status)

    @r.post("/study/{study_id}/api/vote")
    async def vote(study_id: str, request: Request):
        try:
            data = await _json_body(request)
            out = await run_in_threadpool(svc().vote, study_id, data.get("p"), data.get("handle"), data.get("choice"),
                                          data.get("client_ms"))
        except VoteRefused as exc:
            return _error(str(exc), exc.status)
        return JSONResponse(out, headers=NO_STORE)

    @r.get("/study/{study_id}/media/{name}")
    def media(study_id: str, name: str):
        if not STUDY_ID.match(study_id) or not MEDIA_NAME.match(name):
            return Response("Not found.", status_code=404, media_type="text/plain")
        try:
            plan = svc().plan(study_id)
        except VoteRefused:
            return Response("Not found.", status_code=404, media_type="text/plain")
        if name not in plan.media_names or not plan.media_path(name).is_file():
            return Response("Not found.", status_code=404, media_type="text/plain")
        return FileResponse(plan.media_path(name), media_type="image/png",
                            headers={"Cache-Control": "private, max-age=86400, immutable", "X-Content-Type-Options": "nosniff"})

    return r


def create_app(root=None) -> FastAPI:
    """The participant app on its own: only ``/study/...``; no docs, no OpenAPI, nothing of the lab."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="study")
    app.include_router(router(root))

    @app.exception_handler(404)
    async def not_found(request, exc):
        return Response("Not found.", status_code=404, media_type="text/plain")

    return app


# ------------------------------------------------------------------------------------------ serving
class ParticipantServer:
    """A uvicorn server in a background thread (tests, the benchmark, and the lab's own start-up)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, root=None, log_level: str = "warning"):
        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        config = uvicorn.Config(create_app(root), host=host, port=port, log_level=log_level, access_log=False,
                                lifespan="off", timeout_keep_alive=30, backlog=512)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"participant-{port}", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 20) -> "ParticipantServer":
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError(f"the participant server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve_in_thread(host: str = "127.0.0.1", port: int = 0, root=None) -> ParticipantServer:
    return ParticipantServer(host, port, root).start()


def start_for_lab(host: str, port: int, root=None) -> ParticipantServer | None:
    """Start the participant pages beside the lab (own port; a free one if ``port`` is taken) and set
    ``PAIRLAB_STUDY_URL`` for the links the Study tab shows. Never stops the lab from starting."""
    server = None
    for attempt in (port, 0):
        try:
            server = ParticipantServer(host, attempt, root).start()
            break
        except (OSError, RuntimeError) as exc:
            print(f"participant pages: port {attempt} unavailable ({exc})", flush=True)
    if server is None:
        print("participant pages: not started; run 'python -m pairlab study serve' to serve them", flush=True)
        return None
    if not os.environ.get("PAIRLAB_STUDY_URL"):
        shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
        os.environ["PAIRLAB_STUDY_URL"] = f"http://{shown}:{server.port}"
    print(f"participant pages: {public_base_url()}/study/<study_id> (apart from the lab)", flush=True)
    return server


def public_base_url() -> str:
    """The participants' base URL (``PAIRLAB_STUDY_URL``, set by the lab at start-up), for links in the lab."""
    return os.environ.get("PAIRLAB_STUDY_URL", "http://127.0.0.1:7861").rstrip("/")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve the participant pages of pairlab's user studies (no lab).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--root", default=None, help="the studies folder (default: $PAIRLAB_HOME/studies)")
    parser.add_argument("--exit-after", type=float, default=0, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    if args.exit_after > 0:
        timer = threading.Timer(args.exit_after, lambda: os._exit(0))
        timer.daemon = True
        timer.start()
    import uvicorn

    print(f"participant pages on http://{args.host}:{args.port}/study/<study_id>", flush=True)
    uvicorn.run(create_app(Path(args.root) if args.root else None), host=args.host, port=args.port,
                log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
