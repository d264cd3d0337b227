"""`make bench-faults`: what a store fault in the middle of a job costs, at the default budget.

1. read-only: a local sqlite store turns read-only while a run is open (every write fails as
   SQLITE_READONLY does); the job's next metric write is retried, then the run is closed;
2. server gone: a tracking server that answered `/health` stops; the next call is retried.

Each case prints the seconds from the first failed call to the one error the user reads, with
`tracking.retry_s` at its default (30 s), and how the run was left. Results also go to
bench_results/faults.json.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mlflow.tracking import MlflowClient
from sqlalchemy import event

from rlpipe.errors import StoreUnavailable
from rlpipe.tracking.tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]


def read_only_store() -> dict[str, object]:
    uri = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    tracker = Tracker(uri, "bench")
    t0 = 0.0
    try:
        with tracker.run("job", {"rlpipe.kind": "job"}) as run:
            engine = tracker.client._tracking_client.store.engine
            event.listen(engine, "checkout", lambda dbapi, *_: dbapi.execute("PRAGMA query_only = ON"))
            engine.dispose()
            t0 = time.monotonic()
            run.log_metrics({"x": 1.0})
    except StoreUnavailable as exc:
        seconds = time.monotonic() - t0
        status = MlflowClient(uri).get_run(run.run_id).info.status
        return {"seconds": round(seconds, 1), "run_left": status, "error": str(exc)[:160]}
    raise AssertionError("the read-only store was not noticed")


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def server_gone() -> dict[str, object]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tracker = Tracker(f"http://127.0.0.1:{port}", "bench")
    server.shutdown()
    server.server_close()
    t0 = time.monotonic()
    try:
        tracker.experiment_id()
    except StoreUnavailable as exc:
        return {"seconds": round(time.monotonic() - t0, 1), "error": str(exc)[:160]}
    raise AssertionError("the stopped server was not noticed")


def main() -> None:
    results = {"read_only_sqlite": read_only_store(), "server_stopped": server_gone()}
    print("store fault mid-job, tracking.retry_s=30 (default):")
    for name, r in results.items():
        left = f", run left {r['run_left']} for the reaper" if "run_left" in r else ""
        print(f"  {name:18s} {r['seconds']:6.1f} s to the error line{left}")
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "faults.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
