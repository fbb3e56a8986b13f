"""Issue 12: a corpus of bad inputs -- files, typed fields, HTTP bodies, paths -- through the CLI, the tabs' handlers
and both servers. Each one gets one sentence (no traceback, no "Unexpected error"), nothing is left half-written
in the workspace, and the servers keep serving.
"""
from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from pairlab import cli, lab, workspace
from pairlab.errors import UserError

SEEN: set[str] = set()  # every distinct bad input fed, across the tests of this file


def one_sentence(text: str) -> bool:
    text = (text or "").strip()
    return (bool(text) and "\n" not in text and "Traceback" not in text and "Unexpected error" not in text
            and text[-1] in ".?!" and not re.search(r"\b(KeyError|IndexError|TypeError|AttributeError)\b", text))


def workspace_state(home: Path) -> dict:
    """What refused inputs must not change: folders of compositions, runs and studies, and no temporaries."""
    state = {}
    for sub in ("compositions", "runs", "studies"):
        folder = home / sub
        state[sub] = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []
    state["temps"] = sorted(str(p) for p in home.rglob(".tmp-*"))
    return state


# ----------------------------------------------------------------------------------------------- bad files
def bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.png"
    Image.new("RGB", (40, 40), (9, 9, 9)).save(good)
    png = good.read_bytes()
    files = {
        "empty file": b"",
        "text named png": b"hello, I am not an image\n",
        "html named png": b"<html><script>alert(1)</script></html>",
        "truncated png": png[: len(png) // 2],
        "png header only": png[:8],
        "corrupt png body": png[:40] + bytes(200) + png[-20:],
        "jpeg magic only": b"\xff\xd8\xff\xe0" + bytes(10),
        "gif header only": b"GIF89a",
        "zip named png": b"PK\x03\x04" + bytes(60),
        "random bytes": bytes(range(256)) * 4,
        "utf16 text": "not an image".encode("utf-16"),
        "nul bytes": bytes(1000),
    }
    out = {}
    for i, (what, data) in enumerate(files.items()):
        p = folder / f"bad{i:02d}.png"
        p.write_bytes(data)
        out[what] = p
    tiny = folder / "tiny.png"
    Image.new("RGB", (2, 2)).save(tiny)
    out["2x2 pixels"] = tiny
    # a PNG whose header claims 30000 x 30000 pixels (a decompression bomb) with almost no data
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body
                                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    bomb = folder / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1000)))
                     + chunk(b"IEND", b""))
    out["decompression bomb"] = bomb
    wide = folder / "wide.png"
    Image.new("RGB", (8000, 6000)).save(wide, compress_level=1)  # 48 megapixels, over the limit
    out["48 megapixels"] = wide
    out["a folder named png"] = folder / "dir.png"
    (folder / "dir.png").mkdir()
    out["missing file"] = folder / "missing.png"
    return out


def test_bad_image_files_are_one_sentence_each(home, tmp_path):
    from pairlab.data.images import load_rgb
    from pairlab.demo.align import read_image

    files = bad_files(tmp_path / "files")
    for what, path in files.items():
        with pytest.raises(UserError) as caught:
            load_rgb(path)
        assert one_sentence(str(caught.value)), (what, str(caught.value))
        with pytest.raises(UserError) as caught:  # the demo's reader (translate, the Demo tab)
            read_image(str(path))
        assert one_sentence(str(caught.value)), (what, str(caught.value))
        if path.is_file():
            with pytest.raises(UserError) as caught:
                read_image(path.read_bytes())
            assert one_sentence(str(caught.value)), (what, str(caught.value))
        SEEN.add(f"file: {what}")
    # a source folder of nothing but bad files: refused with one sentence, nothing written
    src = home / "sources" / "allbad"
    for split in ("trainA", "trainB", "testA", "testB"):
        (src / split).mkdir(parents=True)
        for what, path in files.items():
            if path.is_file():
                (src / split / path.name).write_bytes(path.read_bytes())
    before = workspace_state(home)
    code = cli.main(["compose", str(src), "--recipe", "pseudo", "--augmentation", "none", "--n", "4", "--n-test", "2",
                     "--task", "folders"])
    assert code == 2 and workspace_state(home) == before
    SEEN.add("file: a folder of only bad images")


# ----------------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def comp_home(home, synthfaces_root):
    """A workspace with a real composition and a frozen study, for commands that need them."""
    import shutil

    shutil.copytree(synthfaces_root, home / "sources" / "sf")
    source = lab.open_user_source(str(home / "sources" / "sf"))
    from pairlab.data.recipes import Recipe

    lab.build_composition(source, Recipe(kind="pseudo", n=12, n_test=4, image_size=32), name="good")
    return home


def cli_cases(home: Path, tmp_path: Path) -> list[list[str]]:
    sf = str(home / "sources" / "sf")
    notfolder = home / "sources" / "file.txt"
    notfolder.write_text("x")
    unknown = home / "sources" / "unknown-layout"
    (unknown / "stuff").mkdir(parents=True)
    badattr = home / "sources" / "badattr"
    (badattr / "img_align_celeba").mkdir(parents=True)
    (badattr / "list_attr_celeba.txt").write_text("not a number\nfoo bar\n")
    (tmp_path / "notimg.txt").write_text("hello")
    compose = ["compose", sf]
    return [
        compose + ["--alpha", "1.5"], compose + ["--alpha", "-0.3"], compose + ["--alpha", "nan"],
        compose + ["--recipe", "pseudo", "--pseudo-alpha", "2"], compose + ["--n", "0"], compose + ["--n", "-5"],
        compose + ["--n", "100000"], compose + ["--n-test", "-1"], compose + ["--image-size", "7"],
        compose + ["--image-size", "-64"], compose + ["--paired-copies", "-1"], compose + ["--paired-copies", "999"],
        compose + ["--name", "good"], compose + ["--task", "smile", "--recipe", "explicit", "--n", "5000"],
        ["compose", str(home / "nowhere")], ["compose", "/etc"], ["compose", f"{home}/../.."], ["compose", ""],
        ["compose", str(notfolder)], ["compose", str(unknown)], ["compose", str(badattr)],
        ["compose", f"{home}/sources/%2e%2e/%2e%2e"], ["compose", str(tmp_path)],
        ["train", "nope"], ["train", "good", "--preset", "no-such-preset"], ["train", "good", "--set", "lr"],
        ["train", "good", "--set", "nosuchkey=1"], ["train", "good", "--set", "lr=-1"],
        ["train", "good", "--set", "image_size=33"], ["train", "good", "--model", "pix2pix", "--set", "ngf=x"],
        ["train", "/etc/passwd"], ["train", "../../etc"], ["train", "good", "--set", "max_iters=-3"],
        ["train", "good", "--set", "device=tpu"], ["train", "good", "--set", "init_from=/etc/passwd"],
        ["runs", "submit", "good", "--seeds", "5-2"], ["runs", "submit", "good", "--seeds", ""],
        ["runs", "submit", "good", "--seeds", "x"], ["runs", "submit", "good", "--seeds", "-1"],
        ["runs", "submit", "good", "--seeds", "0-5000"], ["runs", "submit", "good", "--seeds", "99999999999"],
        ["runs", "submit", "good", "--seeds", "1,,2-"], ["runs", "submit", "good", "--name", "x", "--seeds", "0,1"],
        ["runs", "submit", "nope"], ["runs", "stop", "nope"], ["runs", "resume", "nope"], ["runs", "retry", "nope"],
        ["runs", "delete", "nope"], ["runs", "delete", "../compositions/good"], ["runs", "stop", ".."],
        ["evaluate", "nope"], ["evaluate", "/etc"],
        ["study", "results", "nope"], ["study", "export", "nope"], ["study", "close", "../.."],
        ["study", "open", "x" * 100], ["study", "results", "%2e%2e"],
        ["study", "freeze", "--runs", "a"], ["study", "freeze", "--folders", "a=/etc"],
        ["study", "freeze", "--folders", "noequals"],
        ["translate", "nope", str(tmp_path / "notimg.txt"), "--out", str(tmp_path / "out")],
        ["features", "nope"],
    ]


def test_cli_bad_inputs(comp_home, tmp_path, capsys):
    home = comp_home
    capsys.readouterr()
    before = workspace_state(home)
    for argv in cli_cases(home, tmp_path):
        code = cli.main(argv)
        out, err = capsys.readouterr()
        assert code == 2, (argv, code, out, err)
        assert "Traceback" not in out + err, argv
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if not lines and argv[0] in ("evaluate", "translate"):  # they go on past a bad item: its line in the report
            lines = [line[line.index("error: "):] for line in out.splitlines() if "error: " in line]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, out, err)
        assert one_sentence(lines[0][len("error: "):]), (argv, err)
        assert workspace_state(home) == before, argv
        SEEN.add("cli: " + " ".join(argv))
    assert len([s for s in SEEN if s.startswith("cli: ")]) >= 60


# ----------------------------------------------------------------------------------------------- the tabs
@pytest.fixture
def handlers(comp_home):
    from pairlab.ui.app import build_app

    app = build_app()
    by_name: dict[str, list] = {}
    for block_fn in app.fns.values():
        if block_fn.fn is not None:
            by_name.setdefault(block_fn.fn.__name__, []).append(block_fn.fn)
    return by_name


SRC = ["SynthFaces (embedded)", 200, 64, 0, ""]
RECIPE = ["pseudo", "eyeglasses", 10, 0.5, "pseudo-paired", 0.5, "pseudo", 4, "random", 0, 0, 0, True]
DESIGN = ["t", "eyeglasses", "Which is better?", "Left", "Right", "Both", "Neither", "Look.", 4, 0, "",
          ["pairs"], 0, 2, 2]


def _with(base: list, index: int, value) -> list:
    out = list(base)
    out[index] = value
    return out


def tab_cases(home: Path) -> list[tuple[str, list]]:
    cases = []
    folder = lambda path: ["CelebA folder", 200, 64, 0, path]
    for value in ("", "   ", "/etc", f"{home}/../..", str(home / "missing"), "relative/../../..", "\x00", "~root"):
        cases.append(("do_open_status", folder(value)))
    cases.append(("do_open_status", ["Unaligned folders (trainA/trainB)", 200, 64, 0, str(home / "sources")]))
    cases.append(("do_open_status", ["No such kind", 200, 64, 0, ""]))
    for i, value in ((1, None), (1, 5), (1, 2.5), (1, 10**9), (3, -1), (3, None), (3, 1.5)):
        cases.append(("do_open_status", _with(SRC, i, value)))
    recipe_bad = [(2, None), (2, 0), (2, 2.5), (2, -1), (3, 1.5), (3, -0.3), (3, None), (5, 1.5), (5, -0.3),
                  (7, -1), (7, 1.5), (9, -1), (9, 0.5), (10, 7), (11, -1), (11, None), (11, 0.5), (0, "nope"),
                  (1, "nope"), (4, "nope"), (8, "nope")]
    for i, value in recipe_bad:
        cases.append(("do_preview", SRC + _with(RECIPE, i, value)))
    cases.append(("do_preview", SRC + _with(_with(RECIPE, 0, "alpha-paired"), 3, float("nan"))))
    for name in ("good",):  # exists already: refused, nothing half-written
        cases.append(("do_build", SRC + RECIPE + [name]))
    cases.append(("do_build", SRC + _with(RECIPE, 3, 2.0) + ["x"]))
    for value in (None, "", "nope", "../runs", "good/../../studies"):
        cases.append(("do_open_comp", [value]))
        cases.append(("do_delete", [value, value]))  # the second click (confirmed) of a two-step delete
    launch = ["good", "cyclegan", "cpu-demo-64", "", "0", [], "", "local"]
    for i, value in ((4, "5-2"), (4, ""), (4, "   "), (4, "x"), (4, "-1"), (4, "0-5000"), (4, "1e3"),
                     (3, "lr"), (3, "nosuch=1"), (3, "lr=-1"), (3, "image_size=33"), (2, "nope"), (1, "nope"),
                     (0, ""), (0, "nope"), (0, "/etc"), (5, ["nope"])):
        cases.append(("do_launch", _with(launch, i, value)))
    cases.append(("do_launch", _with(_with(launch, 4, "0,1"), 6, "named")))
    for value in (None, "", "nope", "../compositions"):
        cases.append(("do", [value, value]))
    freeze = [[], "", "latest", "", "", ""]
    cases.append(("do_freeze", freeze + DESIGN))
    cases.append(("do_freeze", _with(freeze, 3, "a=/etc") + DESIGN))
    cases.append(("do_freeze", _with(freeze, 0, ["nope", "nope2"]) + DESIGN))
    for i, value in ((8, None), (8, 2.5), (8, 0), (9, -1), (12, -1), (13, 1.5), (14, -2), (1, "nope")):
        cases.append(("do_freeze", freeze + _with(DESIGN, i, value)))
    for value in (None, "", "nope"):
        cases.append(("do_close", [value, False]))
        cases.append(("do_export", [value, False]))
    cases.append(("do_translate", [None, [], "AtoB", False, 0, ""]))
    cases.append(("do_translate", [str(home / "missing.png"), ["nope"], "AtoB", False, 0, ""]))
    cases.append(("do_plot", [None, [], "", "eyeglasses", "attribute", 1.0, False]))
    cases.append(("do_plot", ["nope", ["nope"], "/etc", "eyeglasses", "attribute", 1.0, False]))
    return cases


def _takes(fn, n: int) -> bool:
    import inspect

    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required) <= n <= len(positional)


def test_tab_handlers_bad_inputs(comp_home, handlers):
    import gradio as gr

    home = comp_home
    before = workspace_state(home)
    for name, args in tab_cases(home):
        fns = [f for f in handlers[name] if _takes(f, len(args))]
        assert fns, (name, len(args))
        for fn in fns[:1]:
            try:
                result = fn(*args)
            except gr.Error as exc:
                message = exc.message
            else:  # some handlers report in their status output instead of raising
                parts = result if isinstance(result, tuple) else (result,)
                texts = [r.get("message", "") if isinstance(r, dict) else r for r in parts
                         if isinstance(r, str) or isinstance(r, dict) and "message" in r]
                message = next((t for t in texts if t), "").lstrip("⚠️ ").strip()
                assert message, f"{name}{tuple(args)} was accepted: {result!r:.300}"
            assert one_sentence(message.replace("  \n", " ")), (name, args, message)
        assert workspace_state(home) == before, (name, args)
        SEEN.add(f"tab: {name} {args!r}")
    assert len([s for s in SEEN if s.startswith("tab: ")]) >= 60


def test_names_that_were_cleaned_or_deduplicated_are_said(comp_home, handlers, monkeypatch, capsys):
    monkeypatch.setenv("PAIRLAB_CPU_SLOTS", "0")  # queued, never started
    monkeypatch.setenv("PAIRLAB_GPU_SLOTS", "0")
    build = handlers["do_build"][0]
    out = build(*(SRC + RECIPE + ["my comp!"]))
    assert "The name 'my comp!' was changed to 'my-comp'" in out[2]
    first = build(*(SRC + RECIPE + [""]))[2]
    second = build(*(SRC + RECIPE + [""]))[2]
    assert "exists already, so this one is" in second and "exists already" not in first
    launch = handlers["do_launch"][0]
    result = launch("good", "cyclegan", "cpu-demo-64", "max_iters=2", "0", [], "my run!", "local")
    assert "The name 'my run!' was changed to 'my-run'" in result["message"]
    from pairlab.train.queue import default_queue

    default_queue().delete("my-run")
    assert cli.main(["compose", "synthfaces", "--sf-count", "200", "--sf-size", "64", "--recipe", "pseudo", "--n", "10",
                     "--n-test", "4", "--name", "cli comp?"]) == 0
    assert "note: The name 'cli comp?' was changed to 'cli-comp'" in capsys.readouterr().out
    SEEN.update({"name: my comp!", "name: default taken", "name: my run!", "name: cli comp?"})


# ----------------------------------------------------------------------------------------------- both servers
def test_servers_bad_http_bodies(tmp_path):
    """Bad bodies to the participant server and the lab; each a one-sentence 4xx; both keep serving."""
    from fastapi.testclient import TestClient

    from pairlab.study import plan as plan_mod
    from pairlab.study.store import VoteStore
    from pairlab.study.server import create_app
    from test_study import make_inputs, small_design

    root = tmp_path / "studies"
    root.mkdir()
    sid = plan_mod.freeze(small_design(), make_inputs(tmp_path / "imgs"), root=root)
    try:
        with TestClient(create_app(root)) as client:
            joined = client.post(f"/study/{sid}/api/join", json={"consent": True}).json()
            token, handle = joined["token"], joined["state"]["trial"]["handle"]
            bodies = [b"", b"{", b"[]", b'"text"', b"42", b"null", b"\xff\xfe", b"{" * 5000, b"x" * 5000,
                      json.dumps({"consent": False}).encode(), json.dumps({"consent": "yes"}).encode(),
                      json.dumps({"consent": True, "code": "x" * 500}).encode(),
                      json.dumps({"consent": True, "code": {"nested": 1}}).encode(),
                      json.dumps({"consent": True, "code": "\x00\x01"}).encode(), json.dumps({}).encode()]
            for body in bodies:
                r = client.post(f"/study/{sid}/api/join", content=body, headers={"Content-Type": "application/json"})
                assert 400 <= r.status_code < 500 and one_sentence(r.json()["error"]), (body[:40], r.text[:200])
                SEEN.add(f"http join: {body[:60]!r}")
            votes = [{}, {"p": token}, {"p": token, "handle": handle}, {"p": token, "handle": handle, "choice": "maybe"},
                     {"p": "forged.0000", "handle": handle, "choice": "left"}, {"p": token, "handle": "x", "choice": "left"},
                     {"p": token, "handle": handle, "choice": "left", "client_ms": "abc"},
                     {"p": token, "handle": handle, "choice": "left", "client_ms": -5},
                     {"p": token, "handle": handle, "choice": "left", "client_ms": 1e300},
                     {"p": token, "handle": handle, "choice": ["left"]}, {"p": 123, "handle": handle, "choice": "left"},
                     {"p": token, "handle": None, "choice": "left"}, {"p": token + "x", "handle": handle, "choice": "left"},
                     {"p": token, "handle": handle * 50, "choice": "left"}]
            for body in votes:
                r = client.post(f"/study/{sid}/api/vote", json=body)
                assert 400 <= r.status_code < 500 and one_sentence(r.json()["error"]), (body, r.text[:200])
                SEEN.add(f"http vote: {json.dumps(body)[:80]}")
            for path in (f"/study/{sid}/api/state?p=forged", "/study/nope/api/state?p=x",
                         f"/study/{sid}/api/state?p=" + "x" * 3000, "/study/%00/api/state"):
                r = client.get(path)
                assert 400 <= r.status_code < 500, path
                if r.headers.get("content-type", "").startswith("application/json"):
                    assert one_sentence(r.json()["error"]), (path, r.text)
                SEEN.add(f"http state: {path[:80]}")
            # the study keeps serving: the real participant still votes
            r = client.post(f"/study/{sid}/api/vote", json={"p": token, "handle": handle, "choice": "left",
                                                              "client_ms": 700})
            assert r.status_code == 200
    finally:
        VoteStore.forget(root)


# ----------------------------------------------------------------------------------------------- the lab over HTTP
from test_security import lab_server, raw_get  # noqa: E402  (a real lab process, loopback only)


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory):
    with lab_server(tmp_path_factory.mktemp("bad-inputs-lab")) as info:
        yield info


def test_lab_bad_http_bodies_and_typed_fields(running_lab):
    """Through the real lab: junk bodies to Gradio's endpoints are refused (4xx), typed fields sent to a handler
    over the API come back as the handler's one sentence, and the lab keeps serving."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    port = running_lab["port"]
    junk = [b"", b"{", b"[]", b"null", b'{"data": 5}', b'{"fn_index": "x"}', b'{"fn_index": 99999, "data": []}',
            b"\xff" * 100, b'{"data": [], "session_hash": "' + b"x" * 5000 + b'"}']
    for path in ("/gradio_api/queue/join", "/gradio_api/run/predict", "/gradio_api/api/predict"):
        for body in junk:
            status, answer = raw_get(port, path, "POST", body, {"Content-Type": "application/json"})
            # Gradio's own API validation: refused (a 500 for an unknown fn_index is Gradio's answer), never a
            # traceback in the answer, and the lab goes on serving
            assert 400 <= status <= 500 and b"Traceback" not in answer, (path, body[:30], status, answer[:200])
            SEEN.add(f"lab http {path}: {body[:40]!r}")
    status, _ = raw_get(port, "/gradio_api/upload", "POST", b"not multipart", {"Content-Type": "multipart/form-data"})
    assert 400 <= status < 500
    SEEN.add("lab http upload: not multipart")
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    for seeds in ("5-2", "", "x", "-1", "0-5000"):
        # the Training tab answers a bad launch on its status line (the event's output is a session State, so an
        # API client gets no exception): it must not crash the app, and nothing may be queued
        try:
            client.predict(None, "cyclegan", "cpu-demo-64", "", seeds, [], "", "local", api_name="/do_launch")
        except AppError as exc:
            assert one_sentence(str(exc)), str(exc)
        assert raw_get(port, "/")[0] == 200, seeds
        SEEN.add(f"lab api do_launch seeds {seeds!r}")
    assert raw_get(port, "/")[0] == 200


def test_the_corpus_is_large(request):
    print(f"\nbad-input corpus: {len(SEEN)} distinct inputs")
    assert len(SEEN) >= 100, len(SEEN)
