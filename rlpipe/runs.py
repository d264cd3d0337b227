"""Entry point: `python -m rlpipe.runs reap [tracking overrides]` (see README); the work is in `cli.runs_main`."""

from __future__ import annotations

from rlpipe.cli.runs_main import main

if __name__ == "__main__":
    main()
