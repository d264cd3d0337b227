"""What the MLflow UI opens on: the experiment in model-training mode, a saved view per sweep, URLs.

How MLflow 3.17's UI decides (read in its JS bundle, `mlflow/server/js/build`):

- **Mode.** The experiment tag `mlflow.experimentKind` (`custom_model_development` for model
  training, `genai_development` for GenAI) is MLflow's record of an experiment's kind, and rlpipe
  sets it on every experiment it creates or writes to (`rlpipe.tracking.experiment`). The 3.17 UI,
  however, takes the mode from its GenAI / Model training switch, remembered per browser (local
  storage `mlflow.workflowType`, GenAI by default), which the URL parameter
  `workflowType=machine_learning` overrides: every URL below carries it.
- **Saved views.** An experiment tag `mlflow.sharedViewState.<key>` holding
  `{"name", "createdAt", "updatedAt", "state"}` (state: the JSON of the runs page's search, sort
  and columns) is a view listed in the runs page's *Views* menu and opened by
  `#/experiments/<id>/runs?viewStateShareKey=<key>`. Column ids read `params.`seed``,
  `metrics.`test/total``, `tags.`rlpipe.verdict``, `attributes.`Description``; `columnOrder`
  and `columnWidths` (pixels) place them.
- **Nesting.** A sweep's jobs are nested under its parent run, collapsed; a view that filters on
  `rlpipe.kind = 'job'` lists them flat, so each run's name (and seed) shows without a click.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from mlflow.tracking import MlflowClient

from rlpipe.project import LOCAL_UI
from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker

WORKFLOW = "workflowType=machine_learning"
"""The URL parameter that opens the 3.17 UI in model-training mode, whatever the browser last chose."""
VIEW_PREFIX = "mlflow.sharedViewState."
VIEW_KEY = "rlpipe-"
"""Start of the key of every view rlpipe saves (one per sweep)."""
MAX_VIEWS = 20
"""Views of rlpipe kept per experiment (the newest); an older sweep's comes back on demand."""
DEFAULT_SELECT = "sharpe_mean"
"""`gates.select_metric` of a sweep whose runs do not record it."""
GROUP_PARAMS = {"agent": "agent._target_", "env": "env.kind", "reward": "reward.kind",
                "data": "data.source", "slices": "slices.kind"}  # fmt: skip
"""The param that says which choice of a swept config group a run made."""
NOT_COLUMNS = ("seed", "gates", "tracking", "registry", "checkpoint", "continuation", "experiment")
"""Swept keys with no column of their own: the seed comes first anyway; a choice of these groups is
not a param (their values are, `gates.select_metric`)."""
BOOKKEEPING = ("hydra.", "pbt.")


def column(kind: str, key: str) -> str:
    """A runs-table column id: `params.`seed``, `metrics.`test/total``, `tags.`rlpipe.verdict``."""
    return f"{kind}.`{key}`"


def swept_columns(swept: Sequence[str]) -> list[str]:
    """The columns that show what a sweep varies: its params (a group's choice), a weekly member's role."""
    out = []
    for key in swept:
        if key == "weekly.job":
            out.append(column("tags", T.ROLE))
        elif key not in NOT_COLUMNS and not key.startswith(BOOKKEEPING):
            out.append(column("params", GROUP_PARAMS.get(key, key)))
    return list(dict.fromkeys(out))


def view_state(sweep_id: str, swept: Sequence[str], select_metric: str) -> dict[str, Any]:
    """The runs page of one sweep: its job runs flat, best validation score first, and the columns a
    comparison needs in this order (seed, what the sweep varies, the ranking score, test total and
    drawdown, verdicts, version, description)."""
    score = column("metrics", K.aggregate("validation", select_metric))
    ident = [column("params", "seed"), *swept_columns(swept)]
    figures = [score, *(column("metrics", K.aggregate("test", k)) for k in ("total", "max_drawdown"))]
    verdicts = [column("tags", k) for k in (T.VERDICT, T.SWEEP_VERDICT, T.MODEL_VERSION)]
    note = column("attributes", "Description")
    columns = [*ident, *figures, *verdicts, note]
    widths = {**dict.fromkeys(ident, 110), **dict.fromkeys(figures, 130), **dict.fromkeys(verdicts, 110)}
    return {
        "searchFilter": f"tags.`{T.SWEEP_ID}` = '{sweep_id}' and tags.`{T.KIND}` = '{T.JOB}'",
        "orderByKey": score,
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {**widths, ident[0]: 70, note: 420},
        "runsHiddenMode": "SHOW_ALL",
    }


def view_key(sweep_id: str) -> str:
    """The saved view's key of a sweep (letters, digits, '_', '-', '.': a tag key and a URL value)."""
    return VIEW_KEY + re.sub(r"[^A-Za-z0-9_.-]", "_", sweep_id)


def save_view(client: MlflowClient, experiment_id: str, key: str, name: str, state: dict[str, Any]) -> None:
    """Write a saved view (`VIEW_PREFIX<key>`); keep the newest `MAX_VIEWS` of rlpipe's."""
    now = int(time.time() * 1000)
    envelope = {"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(experiment_id, VIEW_PREFIX + key, json.dumps(envelope))
    ours = []
    for tag, value in client.get_experiment(experiment_id).tags.items():
        if tag.startswith(VIEW_PREFIX + VIEW_KEY) and tag != VIEW_PREFIX + key:
            try:
                ours.append((int(json.loads(value)["createdAt"]), tag))
            except (ValueError, KeyError, TypeError):
                continue
    for _, tag in sorted(ours, reverse=True)[MAX_VIEWS - 1 :]:
        client.delete_experiment_tag(experiment_id, tag)


def ui_base(tracking_uri: str) -> str:
    """Where the UI of a store is: a tracking server serves its own; a local store is `make ui`'s."""
    return tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI


def runs_url(ui: str, experiment_id: str) -> str:
    """The experiment's runs page in model-training mode."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def view_url(ui: str, experiment_id: str, key: str) -> str:
    """A saved view of the experiment's runs page, in model-training mode."""
    return f"{runs_url(ui, experiment_id)}&viewStateShareKey={quote(key)}"


def sweep_view(
    tracker: Tracker, sweep_id: str, ui: str | None = None, select: str | None = None
) -> str | None:
    """Save the comparison view of sweep `sweep_id` (what it varies from its parent run, the ranking
    score `select`, by default its runs' `gates.select_metric`) and return its URL; None when the
    experiment does not exist."""
    exp_id = tracker.find_experiment_id()
    if exp_id is None:
        return None
    if select is None:
        runs = queries.job_runs(tracker, sweep_id)
        select = runs[0].data.params.get("gates.select_metric", DEFAULT_SELECT) if runs else DEFAULT_SELECT
    state = view_state(sweep_id, queries.swept(tracker, sweep_id), select)
    save_view(tracker.client, exp_id, view_key(sweep_id), f"sweep {sweep_id}", state)
    return view_url(ui or ui_base(tracker.uri), exp_id, view_key(sweep_id))
