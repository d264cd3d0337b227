"""A command's process keeps Python's search for reference cycles off its imports and its exit.

Each case runs in a fresh interpreter: `gc.freeze` lasts for the life of a process, and the test
process's own objects stay out of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BLOCKS = """
import gc, json, sys
sys.path.insert(0, {folder!r})
from rlpipe.cli.collection import imports_uncollected

def state():
    return ["on" if gc.isenabled() else "off", gc.get_freeze_count()]

seen = {{}}
with imports_uncollected():
    seen["inside"] = state()
    import planted  # a module of the test's: the block imports something
seen["imported"] = state()
with imports_uncollected():
    import planted  # already imported: nothing new
seen["nothing new"] = state()
gc.disable()
try:
    with imports_uncollected():
        raise KeyError("a refused job")
except KeyError:
    pass
seen["caller's off, raised"] = state()
print(json.dumps(seen))
"""


def test_imports_run_without_the_search_and_what_they_built_is_frozen_once(tmp_path: Path):
    (tmp_path / "planted.py").write_text("BUILT = [{'k': [i]} for i in range(10000)]\n")
    code = BLOCKS.format(folder=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(proc.stdout)
    frozen = seen["imported"][1]
    assert seen["inside"] == ["off", 0]  # no search while the modules are imported
    assert seen["imported"] == ["on", frozen] and frozen > 20_000  # the module's objects, and all before
    assert seen["nothing new"] == ["on", frozen]  # a sweep's later job: its cycles are searched as before
    assert seen["caller's off, raised"] == ["off", frozen]  # the caller's collector, whatever raised


def test_a_command_ends_with_its_objects_frozen_out_of_the_final_cycle_search():
    """`gc.freeze` is an exit hook of a command's process (one registered before it runs after it
    and sees the objects frozen), however many commands the process ran."""
    code = (
        "import atexit, gc; from rlpipe.cli.collection import exit_without_final_collection as e\n"
        "atexit.register(lambda: print('frozen' if gc.get_freeze_count() else 'not frozen'))\n"
        "e(); e(); print('ran')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["ran", "frozen"]
