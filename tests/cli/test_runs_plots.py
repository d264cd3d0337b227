"""`python -m rlpipe.runs plots`: the tear sheets a job leaves to a process of their own, drawn again on
demand for a run or a whole sweep, and its mistakes refused in one line."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from rlpipe.tracking import queries
from rlpipe.tracking.tracker import Tracker
from tests.support.project import Sweep, cli, drawn_plots, drawn_sweep_plot


def test_a_sweeps_tear_sheets_are_drawn_after_its_jobs_and_again_on_demand(smoke_sweep: Sweep):
    tracker = Tracker(smoke_sweep.uri, "rlpipe")
    sweep_id = queries.latest_sweep_id(tracker)
    assert sweep_id is not None
    runs = [r.info.run_id for r in queries.job_runs(tracker, sweep_id)]
    before = {rid: drawn_plots(smoke_sweep.uri, rid) for rid in runs}  # the jobs' own drawing, done
    parent = tracker.parent_run(sweep_id)
    assert "sweep/comparison.png" in drawn_sweep_plot(smoke_sweep.uri, parent)  # the sweep step's, done
    out = cli("rlpipe.runs", "plots", f"sweep_id={sweep_id}", f"tracking.uri={smoke_sweep.uri}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(out.stdout.splitlines()) == sorted(
        [f"sweep {sweep_id}: sweep/comparison.png on its parent run"]
        + [f"{rid}: 14 tear sheet(s) in plots/" for rid in runs]
    )
    one = cli("rlpipe.runs", "plots", f"run_id={runs[0]}", f"tracking.uri={smoke_sweep.uri}")
    assert one.returncode == 0 and one.stdout == f"{runs[0]}: 14 tear sheet(s) in plots/\n", one.stderr[
        -2000:
    ]
    client = MlflowClient(smoke_sweep.uri)
    for rid in runs:
        assert drawn_plots(smoke_sweep.uri, rid) == before[rid]  # the same files, drawn again
        assert client.get_run(rid).data.tags["rlpipe.tear_sheets"] == "drawn: 14 files"


def test_plots_mistakes_are_one_line_naming_what_to_pass(smoke_sweep: Sweep):
    store = f"tracking.uri={smoke_sweep.uri}"
    cases = {
        ("plots", store): "plots takes run_id=<id> or sweep_id=<id>, one of them",
        ("plots", "run_id=0123abcd", store): "run 0123abcd: not in the store",
        ("plots", "ui=http://x", store): "['ui'] do not go with plots",
        ("plots", "sweep_id=nope", store): "sweep 'nope' has no job run",
        ("plots", "run_id=0123abcd", "what=comparison", store): "what=comparison goes with sweep_id=<id>",
        ("plots", "sweep_id=s", "what=some", store): "what=some: expected one of",
    }
    for args, message in cases.items():
        out = cli("rlpipe.runs", *args)
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
