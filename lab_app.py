"""Start the pairlab lab on http://127.0.0.1:7860 with the embedded default source (SynthFaces)."""
from __future__ import annotations

import argparse
import os
import sys
import threading


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("PAIRLAB_HOST", "127.0.0.1"), help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PAIRLAB_PORT", "7860")), help="port (default 7860)")
    parser.add_argument("--no-default-source", action="store_true", help="do not render the default SynthFaces on start")
    parser.add_argument("--exit-after", type=float, default=float(os.environ.get("PAIRLAB_EXIT_AFTER", "0")),
                        help="stop by itself after this many seconds (0 = run until stopped; tests use it)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.exit_after > 0:
        # A watchdog so that servers started by tests always end, even if the test runner dies.
        timer = threading.Timer(args.exit_after, lambda: os._exit(0))
        timer.daemon = True
        timer.start()

    from pairlab import lab, workspace
    from pairlab.ui.app import CSS, build_app

    home = workspace.home()
    print(f"pairlab workspace: {home}", flush=True)
    if not args.no_default_source:
        def report(fraction, message):
            print(f"  default SynthFaces {fraction * 100:5.1f}%  {message}", flush=True)

        source = lab.synthfaces_source(progress=report)
        print(f"default source ready: {source.root} ({len(source.samples)} images)", flush=True)
    app = build_app()
    app.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, allowed_paths=[str(home)], css=CSS, show_error=True,
        footer_links=["settings"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
