"""Entry point: `python -m rlpipe.paper model=models:/rlpipe-policy@champion data=csv data.path=...`
(`follow=true` for a file that grows, `resume=true` to continue a stopped session)."""

from __future__ import annotations

from rlpipe.cli.paper_main import main

if __name__ == "__main__":
    main()
