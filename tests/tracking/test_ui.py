"""The MLflow UI: a saved view per sweep, its URL, and a browser that opens it on `make ui`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking import ui
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT, Sweep, cli

SCORE = "metrics.`validation/sharpe_mean`"
RUN_NAME = "attributes.`Run Name`"


def test_a_sweeps_view_lists_its_jobs_best_score_first_with_what_it_varies():
    swept = ["seed", "reward", "agent.learning_rate", "weekly.job"]
    state = ui.view_state("2026-12-03-ab12cd", swept, "sharpe_mean")
    sweep, kind = "tags.`rlpipe.sweep_id` = '2026-12-03-ab12cd'", "tags.`rlpipe.kind` = 'job'"
    assert state["searchFilter"] == f"{sweep} and {kind}"
    assert (state["orderByKey"], state["orderByAsc"]) == (SCORE, False)
    assert state["selectedColumns"] == state["columnOrder"] == [
        "params.`seed`", "params.`reward.kind`", "params.`agent.learning_rate`", "tags.`rlpipe.weekly_role`",
        SCORE, "metrics.`test/total`", "metrics.`test/max_drawdown`",
        "tags.`rlpipe.verdict`", "tags.`rlpipe.sweep_verdict`", "tags.`rlpipe.model_version`",
        "attributes.`Description`",
    ]  # fmt: skip


def test_group_choices_and_bookkeeping_keys_map_to_the_params_that_say_them():
    swept = ["agent", "env", "data", "slices", "timesteps", "gates", "experiment", "pbt.round", "hydra.x"]
    assert ui.swept_columns(swept) == [
        "params.`agent._target_`", "params.`env.kind`", "params.`data.source`", "params.`slices.kind`",
        "params.`timesteps`",
    ]  # fmt: skip


def test_urls_open_the_runs_page_in_model_training_mode():
    assert ui.view_url("http://127.0.0.1:5000/", "3", ui.view_key("multirun 1/x")) == (
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"
        "&viewStateShareKey=rlpipe-multirun_1_x"
    )
    assert ui.ui_base("sqlite:////tmp/mlflow.db") == "http://127.0.0.1:5000"
    assert ui.ui_base("http://127.0.0.1:5001/") == "http://127.0.0.1:5001"  # a server serves its own UI


def test_only_the_newest_views_of_rlpipe_are_kept(tracking_uri):
    tracker = Tracker(tracking_uri, "rlpipe")
    exp = tracker.experiment_id()
    tracker.client.set_experiment_tag(exp, ui.VIEW_PREFIX + "mine", "{}")  # a view someone saved by hand
    for i in range(ui.MAX_VIEWS + 3):
        ui.save_view(tracker.client, exp, ui.view_key(f"s{i}"), f"sweep s{i}", {"searchFilter": ""})
        time.sleep(0.002)  # createdAt is in ms
    tags = MlflowClient(tracking_uri).get_experiment(exp).tags
    kept = sorted(int(k.removeprefix(ui.VIEW_PREFIX + "rlpipe-s")) for k in tags if "rlpipe-s" in k)
    assert kept == list(range(3, ui.MAX_VIEWS + 3)) and ui.VIEW_PREFIX + "mine" in tags
    envelope = json.loads(tags[ui.VIEW_PREFIX + "rlpipe-s3"])
    assert envelope["name"] == "sweep s3" and json.loads(envelope["state"]) == {"searchFilter": ""}


def test_no_view_is_saved_where_there_is_no_experiment(tracking_uri):
    assert ui.sweep_view(Tracker(tracking_uri, "rlpipe"), "s1") is None
    assert MlflowClient(tracking_uri).get_experiment_by_name("rlpipe") is None


class _Grid(HTMLParser):
    """The text of every cell of the runs table in a DOM dump, {(run id, column id): text}; in the
    run-name column, the link's text only (the cell also holds the run's colour picker)."""

    VOID = {"input", "img", "br", "hr", "meta", "link", "source", "col", "wbr", "area", "base", "embed"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str | None, str | None, bool]] = []
        self.cells: dict[tuple[str, str], str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        a = dict(attrs)
        row, col, link = self.stack[-1] if self.stack else (None, None, False)
        row = a.get("row-id") if a.get("role") == "row" else row
        col = a.get("col-id") if a.get("role") == "gridcell" else col
        self.stack.append((row, col, link or tag == "a"))

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        row, col, link = self.stack[-1] if self.stack else (None, None, False)
        if row and col and data.strip() and (link or col != RUN_NAME):
            self.cells[(row, col)] = self.cells.get((row, col), "") + data.strip()


def _browser() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen, timeout_s: float = 180.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, f"make ui ended ({proc.returncode}) before serving {url}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise AssertionError(f"make ui did not serve {url} within {timeout_s:.0f} s")


@pytest.mark.slow  # the UI's start and a headless browser: about a minute
@pytest.mark.skipif(_browser() is None, reason="no chromium (or google-chrome) to load the UI headless")
@pytest.mark.skipif(shutil.which("make") is None, reason="no make to start the UI the way `make ui` does")
def test_make_ui_shows_the_seed_of_every_run_of_a_finished_sweep_without_a_click(
    smoke_sweep: Sweep, tmp_path
):
    """`make ui STORE=<the sweep's store>`, the URL `python -m rlpipe.runs compare` prints, a headless
    browser: every run's row shows its seed (its name starts with it, and the seed column) unclicked."""
    port, log = _free_port(), (tmp_path / "ui.log").open("w")
    make = ["make", "-f", str(ROOT / "Makefile"), "ui", f"PORT={port}", f"STORE={smoke_sweep.uri}"]
    make += [f"BIN={Path(sys.executable).parent}", "STAMP="]  # this environment: nothing to build
    server = subprocess.Popen(
        make, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", server)
        out = cli("rlpipe.runs", "compare", f"tracking.uri={smoke_sweep.uri}", f"ui=http://127.0.0.1:{port}")
        assert out.returncode == 0, out.stderr[-2000:]
        url = out.stdout.strip().splitlines()[-1]
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--window-size=1600,1000",
                 f"--user-data-dir={tmp_path / 'browser'}", "--virtual-time-budget=20000",
                 "--dump-dom"]  # fmt: skip
        dom = subprocess.run([_browser(), *flags, url], capture_output=True, text=True, timeout=300).stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    grid = _Grid()
    grid.feed(dom)
    client = MlflowClient(smoke_sweep.uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("rlpipe").experiment_id], "tags.`rlpipe.kind` = 'job'"
    )
    assert len(runs) == 4, [r.info.run_name for r in runs]
    for r in runs:
        seed = r.data.params["seed"]
        shown = grid.cells.get((r.info.run_id, RUN_NAME), "")
        assert shown == r.info.run_name and shown.startswith(f"s{seed}-"), (shown, dom[-3000:])
        assert grid.cells.get((r.info.run_id, "params.`seed`")) == seed
        assert grid.cells.get((r.info.run_id, SCORE))  # the score that ranks the runs shows too
