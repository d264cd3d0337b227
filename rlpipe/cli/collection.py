"""A command's process and Python's search for reference cycles: kept off its imports and its exit.

Python searches every object it tracks for cycles whenever enough new objects have been allocated
since the last search, and the whole heap at the oldest generation's turn. Importing torch, SB3,
torch's optimizer machinery and MLflow allocates millions of objects that live as long as the
process: the searches made while they are imported walk a heap that only grows, 9 full ones in
the first 5 s of the `make run` sweep, 1.4 s in all, and each later full search walks it again.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def imports_uncollected() -> Iterator[None]:
    """Run the block (the imports of the modules that run a job, the first use of the store) with no
    search for cycles, then, if it imported anything, `gc.freeze` what is alive: the modules and
    what they built stay for the process's life, and no later search walks them again.

    Objects are still freed by reference counting as they always are; only cycles left unreachable
    inside the block (a few, from the imports) are never searched for. A block that imports nothing
    (a sweep's later jobs) freezes nothing: the cycles a job leaves are searched for as before.
    """
    enabled, modules = gc.isenabled(), len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > modules:
            gc.freeze()
        if enabled:
            gc.enable()


def exit_without_final_collection() -> None:
    """Let the command's process end without the interpreter's last search for reference cycles.

    At exit Python tears the modules down and searches every object torch, SB3, MLflow and pandas
    created for cycles: 1.4-4.5 s of an ended command's wall time on 2 cores (a sweep's, a joblib
    worker's, a test's subprocess). `gc.freeze` as an exit hook takes the objects alive then out of
    that search; every exit hook still runs (logging, MLflow, the sweep's own) and every object is
    still released by reference counting; only cycles left at exit are not searched for.
    """
    atexit.unregister(gc.freeze)  # once, however many commands a process runs (tests call them in-process)
    atexit.register(gc.freeze)
