"""The comparison notebook runs headless on a real smoke sweep and shows the grid, plots and gates."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from rlpipe.tracking import compare
from tests.conftest import ROOT, crownable

NOTEBOOK = ROOT / "notebooks" / "compare_runs.ipynb"
EXPERIMENT = "rlpipe"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """'python3' running this interpreter: the venv's own kernelspec, or one written to a temp dir."""
    name = "python3"
    try:
        argv0 = KernelSpecManager().get_kernel_spec(name).argv[0]
    except NoSuchKernel:
        argv0 = ""
    # jupyter_client runs a spec whose argv[0] is a bare 'python' with sys.executable
    ours = argv0 in {"python", "python3", f"python3.{sys.version_info[1]}"} or (
        bool(argv0) and Path(argv0).resolve() == Path(sys.executable).resolve()
    )
    if ours:
        yield name
        return
    share = tmp_path_factory.mktemp("jupyter")
    spec = share / "kernels" / name
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "rlpipe venv", "language": "python"})
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", os.pathsep.join([str(share), os.environ.get("JUPYTER_PATH", "")]))
        yield name


def test_notebook_is_stored_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    assert "import mlflow" not in source and "from mlflow" not in source  # only rlpipe/tracking talks to it


def test_notebook_runs_headless_and_shows_grid_plots_and_gates(
    smoke_sweep_ids, smoke_runs, kernel_name, monkeypatch
):
    uri, sweep_id, tmp = smoke_sweep_ids
    monkeypatch.setenv("RLPIPE_TRACKING_URI", uri)
    monkeypatch.setenv("RLPIPE_EXPERIMENT", EXPERIMENT)
    monkeypatch.delenv("RLPIPE_SWEEP_ID", raising=False)  # the default: the latest sweep
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # grid bars, regimes, equity curves

    def html(tag: str) -> str:
        cell = next(c for c in nb.cells if tag in c.metadata.get("tags", []))
        return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)

    grid = html("grid")
    assert "<table" in grid and "Test total after fees" in grid and "pnl_fees" in grid
    total = smoke_runs[(smoke_runs["seed"] == 1) & (smoke_runs["reward"] == "pnl")]["test_total"].iloc[0]
    assert f"{total:+.2%}" in grid
    assert all(v in html("verdicts") for v in smoke_runs["sweep_verdict"])
    assert "sideways" in html("regimes") and "buy_and_hold_total" in html("regimes")
    gates = html("gates")
    assert "seed_stability" in gates and "drawdown_under_cap" in gates
    # every gate cell shows its outcome with the value judged against the threshold
    table = compare.gate_frame(uri, EXPERIMENT, sweep_id)
    for col in ("drawdown_under_cap", "deflated_sharpe", "pbo"):
        cell = table[col].iloc[0]
        assert re.fullmatch(r"[YN] \(\S+ ([<=>]|vs) \S+\)", cell) and f">{cell}</td>" in gates, (col, cell)

    def markdown(tag: str) -> str:
        cell = next(c for c in nb.cells if tag in c.metadata.get("tags", []))
        return "".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)

    pbo = table.attrs["pbo"]
    shown_pbo = f"**{pbo:.2f}**" if pbo is not None else "Probability of backtest overfitting: not computed"
    assert shown_pbo in markdown("gates")
    # the equity curves are drawn against the bars' dates (UTC)
    times = compare.curves_frame(uri, smoke_runs["run_id"][:1], role="test")["time"]
    span = f"Test slices from {times.min():%Y-%m-%d %H:%M} to {times.max():%Y-%m-%d %H:%M} UTC."
    assert span in markdown("curves")
    curves_cell = next(c for c in nb.cells if "curves" in c.metadata.get("tags", []))
    assert any("image/png" in o.get("data", {}) for o in curves_cell.outputs)
    picks = next(c for c in nb.cells if "picks" in c.metadata.get("tags", []))
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in picks.outputs)
    promoted = not crownable(uri, smoke_runs).empty
    assert ("Champion: v" in shown) if promoted else ("No configuration of this sweep was promoted" in shown)
    assert sweep_id in "".join(
        o.get("data", {}).get("text/markdown", "") for c in nb.cells[:4] for o in c.get("outputs", [])
    )
