"""Launch the explorer bound to localhost: ``python -m app [--library DIR] [--port N]``.

Equivalent to ``streamlit run app/streamlit_app.py --server.address 127.0.0.1 --server.headless true
-- --library DIR``. ``--address`` opens it to a network on purpose (the app has no login).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "streamlit_app.py"


def command(args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", args.address,
           "--server.port", str(args.port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    if args.library:
        cmd += ["--", "--library", str(Path(args.library).expanduser().resolve())]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", help="library folder (default: ACTBERT_LIBRARY, else the demo)")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    args = parser.parse_args(argv)
    print(f"ActBERT explorer on http://{args.address}:{args.port}", flush=True)
    return subprocess.call(command(args))


if __name__ == "__main__":
    sys.exit(main())
