"""Launch the explorer bound to localhost: ``python -m app [--library DIR] [--port N]``.

Equivalent to ``streamlit run app/streamlit_app.py --server.address 127.0.0.1 --server.headless true
-- --library DIR``. ``--address`` opens it to a network on purpose (the app has no login).
The Library page ingests only folders under the library's sources unless ``--allow-ingest`` is given.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "streamlit_app.py"


def command(args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", args.address,
           "--server.port", str(args.port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    script_args = []
    if args.library:
        script_args += ["--library", str(Path(args.library).expanduser().resolve())]
    if args.allow_ingest:
        script_args.append("--allow-ingest")
    if args.demo_videos:
        script_args += ["--demo-videos", str(args.demo_videos)]
    return cmd + (["--", *script_args] if script_args else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", help="library folder (default: ACTBERT_LIBRARY, else the demo)")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--allow-ingest", action="store_true",
                        help="let the Library page ingest any folder of this machine "
                             "(default: only folders under the library's sources)")
    parser.add_argument("--demo-videos", type=int, metavar="N",
                        help="with no library configured: build a demo of N videos (default 24)")
    args = parser.parse_args(argv)
    print(f"ActBERT explorer on http://{args.address}:{args.port}", flush=True)
    child = subprocess.Popen(command(args))
    # a service manager stops us with SIGTERM: the Streamlit server must stop with us, not linger
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: child.send_signal(received))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
