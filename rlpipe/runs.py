"""Entry point: `python -m rlpipe.runs reap|compare|plots` (see README); the work is in `cli.runs_main`."""

from __future__ import annotations

from rlpipe.cli.runs_main import main

if __name__ == "__main__":
    main()
