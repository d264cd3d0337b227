"""The comparison notebook runs headless on a real smoke sweep and shows the grid, plots and gates."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from mlflow.tracking import MlflowClient

from rlpipe.evaluation.metrics import sharpe_window
from rlpipe.reports import gate_table, sweep_frames
from rlpipe.tracking import notebook_reads
from tests.support.project import ROOT
from tests.support.stores import crownable

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


@pytest.fixture(scope="module")
def executed(smoke_sweep_ids, kernel_name) -> nbformat.NotebookNode:
    """The notebook run headless on the smoke sweep (its newest sweep, found by default)."""
    uri, _, tmp = smoke_sweep_ids
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RLPIPE_TRACKING_URI", uri)
        mp.setenv("RLPIPE_EXPERIMENT", EXPERIMENT)
        mp.delenv("RLPIPE_SWEEP_ID", raising=False)  # the default: the latest sweep
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=300, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp)}}
        )
        client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def cell(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if tag in c.metadata.get("tags", []))


def shown(nb: nbformat.NotebookNode, tag: str, mime: str) -> str:
    """What the cell tagged `tag` displayed as `mime` (text/html, text/markdown)."""
    return "".join(o.get("data", {}).get(mime, "") for o in cell(nb, tag).outputs)


def images(nb: nbformat.NotebookNode, tag: str) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell(nb, tag).outputs)


def test_notebook_runs_headless_and_shows_grid_plots_and_gates(executed, smoke_sweep_ids, smoke_runs):
    nb = executed
    uri, sweep_id, _ = smoke_sweep_ids
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6  # grid, spread, regimes, curves x3

    grid = shown(nb, "grid", "text/html")
    assert "<table" in grid and "Test total after fees" in grid and "pnl_fees" in grid
    total = smoke_runs[(smoke_runs["seed"] == 1) & (smoke_runs["reward"] == "pnl")]["test_total"].iloc[0]
    assert f"{total:+.2%}" in grid
    assert all(v in shown(nb, "verdicts", "text/html") for v in smoke_runs["sweep_verdict"])
    regimes = shown(nb, "regimes", "text/html")
    assert "sideways" in regimes and "buy_and_hold_total" in regimes
    gates = shown(nb, "gates", "text/html")
    assert "seed_stability" in gates and "drawdown_under_cap" in gates
    # every gate cell shows its outcome with the value judged against the threshold; n/a: nothing to judge
    table = gate_table.gate_frame(notebook_reads.gate_records(uri, EXPERIMENT, sweep_id))
    pbo = table.attrs["pbo"]
    for col in ("drawdown_under_cap", "deflated_sharpe", "pbo"):
        text = table[col].iloc[0]
        judged = re.fullmatch(r"[YN] \(\S+ ([<=>]|vs) \S+\)", text)
        assert (judged or (col == "pbo" and pbo is None and text == "n/a")) and f">{text}</td>" in gates, col
    shown_pbo = f"**{pbo:.2f}**" if pbo is not None else "Probability of backtest overfitting: not computed ("
    assert shown_pbo in shown(nb, "gates", "text/markdown")
    # the equity curves are drawn against the bars' dates (UTC)
    times = notebook_reads.curves_frame(uri, smoke_runs["run_id"][:1], role="test")["time"]
    span = f"Test slices from {times.min():%Y-%m-%d %H:%M} to {times.max():%Y-%m-%d %H:%M} UTC."
    assert span in shown(nb, "curves", "text/markdown") and images(nb, "curves") == 1
    picks = shown(nb, "picks", "text/markdown")
    promoted = not crownable(uri, smoke_runs).empty
    assert ("Champion: v" in picks) if promoted else ("No configuration of this sweep was promoted" in picks)


def test_notebook_header_names_only_what_varied_between_the_runs(executed, smoke_sweep_ids):
    _, sweep_id, _ = smoke_sweep_ids
    header = "".join(
        o.get("data", {}).get("text/markdown", "") for c in executed.cells[:4] for o in c.get("outputs", [])
    )
    assert sweep_id in header
    # the smoke sweep is seed=1,2 x reward=pnl,pnl_fees: nothing else differs in the runs' params
    assert "Varied between the runs: reward.kind (pnl, pnl_fees); seed (1, 2)." in header
    assert "besides" not in header


def test_notebook_shows_each_configurations_seed_spread(executed, smoke_runs):
    spread = sweep_frames.seed_dispersion(smoke_runs, ["validation_sharpe_mean", "test_total"], ["reward"])
    table = shown(executed, "dispersion", "text/html")
    for reward in ("pnl", "pnl_fees"):
        totals = smoke_runs.loc[smoke_runs["reward"] == reward, "test_total"]
        mean, std = totals.mean(), totals.std()  # two seeds: the sample std is |a - b| / sqrt(2)
        assert std == pytest.approx(abs(totals.iloc[0] - totals.iloc[1]) / math.sqrt(2))
        assert f"{mean:+.2%} ± {std:.2%} ({totals.min():+.2%} to {totals.max():+.2%})" in table, reward
    assert all(v in table for v in sweep_frames.mean_spread(spread, "validation_sharpe_mean"))
    assert images(executed, "dispersion") == 1


def test_notebook_chains_the_test_slices_in_time_and_rolls_their_sharpe(
    executed, smoke_sweep_ids, smoke_runs
):
    uri, _, _ = smoke_sweep_ids
    client = MlflowClient(uri)
    text = shown(executed, "stitched", "text/markdown")
    assert text.startswith("5 test slice(s), ") and images(executed, "stitched") == 1
    for reward in ("pnl", "pnl_fees"):
        # the chain ends where the slices' recorded totals compound to, averaged over the seeds
        ends = [
            math.prod(1 + v for k, v in client.get_run(run_id).data.metrics.items()
                      if k.startswith("slice/test_") and k.endswith("/total"))
            for run_id in smoke_runs.loc[smoke_runs["reward"] == reward, "run_id"]
        ]  # fmt: skip
        assert f"{reward} {sum(ends) / len(ends) - 1:+.2%}" in text, (reward, text)
    bars = int(text.split(", ")[1].split(" bars")[0])
    window = sharpe_window(bars, float(smoke_runs["bars_per_year"].iloc[0]))
    assert f"Window: {window} bars" in shown(executed, "rolling", "text/markdown")
    assert images(executed, "rolling") == 1
