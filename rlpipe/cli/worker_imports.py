"""The one module joblib's fork server preloads (`cli.joblib_pool`): importing it imports what a
job imports (`joblib_pool.WORKER_MODULES`) with Python's collector off, then freezes what they built
(`cli.collection.imports_uncollected`), so the workers forked from the server share one import and
none of them searches it for cycles again. Nothing else imports it: importing it is what it is for.
"""

from __future__ import annotations

import contextlib
import importlib

from rlpipe.cli.collection import imports_uncollected
from rlpipe.cli.joblib_pool import WORKER_MODULES

with imports_uncollected():
    for _name in WORKER_MODULES:
        with contextlib.suppress(ImportError):  # as the server's own preloading: a worker imports it then
            importlib.import_module(_name)
