"""Entry point: `python -m rlpipe.routine [experiment=routine|routine_smoke] [resume=true]`: the weekly
routine replayed over history (see README); the work is in `cli.routine_main` and `jobs.routine_job`."""

from __future__ import annotations

from rlpipe.cli.routine_main import main

if __name__ == "__main__":
    main()
