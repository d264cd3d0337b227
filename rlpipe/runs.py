"""Entry point: `python -m rlpipe.runs reap [tracking overrides]` (see README); the work is in `cli.runs`."""

from __future__ import annotations

from rlpipe.cli.runs import main

if __name__ == "__main__":
    main()
