"""Start the pairlab lab on http://127.0.0.1:7860 with the embedded default source (SynthFaces)."""
from __future__ import annotations

import argparse
import os
import sys
import threading


def install_demo_if_fresh(empty: bool, progress=None) -> None:
    """A new workspace opens as the demo workspace (every tab has content) unless asked to start empty."""
    from pairlab.demo import shipped
    from pairlab.errors import UserError

    if not shipped.is_fresh():
        return
    if empty or os.environ.get("PAIRLAB_DEMO", "1") == "0":
        shipped.decline_demo()
        print("new workspace: starting empty (no demo)", flush=True)
        return

    def report(fraction, message):
        print(f"  demo workspace {fraction * 100:5.1f}%  {message}", flush=True)
        if progress:
            progress(fraction, message)

    try:
        summary = shipped.install_demo(progress=report)
    except UserError as exc:
        print(f"demo workspace not installed: {exc}", flush=True)
        return
    print(f"demo workspace ready in {summary['seconds']} s: {len(summary['runs'])} runs, "
          f"study {summary['study']['id'] if summary['study'] else 'none'}"
          + "".join(f"\n  note: {n}" for n in summary["notes"]), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("PAIRLAB_HOST", "127.0.0.1"), help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PAIRLAB_PORT", "7860")), help="port (default 7860)")
    parser.add_argument("--study-port", type=int, default=int(os.environ.get("PAIRLAB_STUDY_PORT", "0")),
                        help="port of the participant pages of user studies (default: the lab's port + 1)")
    parser.add_argument("--no-default-source", action="store_true", help="do not render the default SynthFaces on start")
    parser.add_argument("--empty", action="store_true",
                        help="start a new workspace empty instead of installing the demo workspace (shipped runs, "
                             "a comparison, an example study)")
    parser.add_argument("--exit-after", type=float, default=float(os.environ.get("PAIRLAB_EXIT_AFTER", "0")),
                        help="stop by itself after this many seconds (0 = run until stopped; tests use it)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.exit_after > 0:
        # A watchdog so that servers started by tests always end, even if the test runner dies.
        timer = threading.Timer(args.exit_after, lambda: os._exit(0))
        timer.daemon = True
        timer.start()

    # The port answers at once with "Preparing the workspace… x%" until Gradio takes it over (first start: the
    # default SynthFaces and the demo workspace take minutes); the page reloads into the lab by itself.
    from pairlab.ui.preparing import Preparing

    try:
        preparing = Preparing(args.host, args.port)
    except OSError as exc:
        print(f"pairlab cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); is another lab running "
              f"there? Choose another port with --port.", flush=True)
        return 1
    preparing.update(0.01, "Loading the libraries")
    from pairlab import lab, workspace
    from pairlab.ui.app import CSS, build_app

    home = workspace.home()
    print(f"pairlab workspace: {home}", flush=True)
    if not args.no_default_source:
        step = preparing.phase(0.05, 0.3, "The embedded faces (SynthFaces): ")

        def report(fraction, message):
            print(f"  default SynthFaces {fraction * 100:5.1f}%  {message}", flush=True)
            step(fraction, message)

        source = lab.synthfaces_source(progress=report)
        print(f"default source ready: {source.root} ({len(source.samples)} images)", flush=True)
        install_demo_if_fresh(args.empty, progress=preparing.phase(0.3, 0.92, "The demo workspace: "))
    preparing.update(0.93, "Starting the training queue and the pages")
    # The training queue: settle runs whose process died while the app was away (they become failed and
    # resumable; live ones keep running), then schedule queued runs every two seconds in the background.
    from pairlab.train.queue import default_queue

    queue = default_queue()
    settled = queue.reconcile()
    print(f"training queue: slots {queue.describe_slots()}; started {len(settled['started'])}, "
          f"settled {len(settled['ended'])} ended run(s)", flush=True)
    queue.start_scheduler(interval=2.0)
    # User studies: the participant pages get their own server and port, so nothing of the lab is reachable from
    # them; the lab itself asks for a login whenever it is served beyond localhost (PAIRLAB_AUTH=user:password).
    from pairlab.study.access import lab_auth
    from pairlab.study.server import start_for_lab

    start_for_lab(args.host, args.study_port or args.port + 1)
    app = build_app()
    from pairlab.ui.serving import launch_kwargs

    preparing.update(0.98, "Opening the lab")
    preparing.close()  # Gradio takes the port now; the preparing page polls through the gap and reloads

    # Only what the pages show is served: handed-out copies in Gradio's cache, never the workspace's files.
    app.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, css=CSS, show_error=True, **launch_kwargs(home),
        auth=lab_auth(args.host),
        footer_links=["settings"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
