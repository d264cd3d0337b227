"""Serve a registered policy over HTTP (`make serve`): its files checked first, then `mlflow models serve`.

    python -m rlpipe.policy.serve models:/rlpipe-policy@champion --tracking-uri URI [--port N]

The policy is downloaded into a private temporary folder and every file of it, the MLmodel
included, is checked against the sha256 the store records for it before MLflow reads anything;
then `mlflow models serve --env-manager local` serves that checked copy, found through this
interpreter's own `bin/` (no activated venv needed) and loaded by `rlpipe.policy.pyfunc`.
`--env-manager local` because the other managers install the packages the artifact names. The
command logs a `curl` line that posts the policy's logged `serving_input_example.json`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from rlpipe.errors import RlpipeError
from rlpipe.policy.resolved import fetch_policy, resolve_model
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger(__name__)
EXAMPLE = "serving_input_example.json"
"""The request body MLflow logs beside the model (from its input example)."""


def serve_command(model_dir: Path, host: str, port: int, workers: int) -> list[str]:
    """`mlflow models serve` of a local model folder, with this interpreter."""
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir), "--env-manager", "local",
            "-h", host, "-p", str(port), "-w", str(workers)]  # fmt: skip


def serve_env(tracking_uri: str) -> dict[str, str]:
    """The environment of the server: this interpreter's bin/ first on PATH (mlflow starts `uvicorn`
    from PATH), and the store whose registry the loader checks the files against."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    store = {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    return {**os.environ, "PATH": path, **store}


def serve(model_uri: str, tracking_uri: str, host: str, port: int, workers: int) -> int:
    """Check the policy of `model_uri`, serve it until interrupted; returns the server's exit status.

    Raises:
        RegistryError: `model_uri` is not in the store.
        PolicyError: its files do not match the store's record.
    """
    tracker = Tracker(tracking_uri, experiment="")  # resolves and downloads only; opens no run
    ref = resolve_model(tracker, model_uri)
    with tempfile.TemporaryDirectory(prefix="rlpipe-serve-") as tmp:
        local = fetch_policy(tracker, ref, Path(tmp))
        log.info("serving %s (version %s, files checked) on http://%s:%d", ref.uri, ref.version, host, port)
        log.info(
            "try: curl -s http://%s:%d/invocations -H 'Content-Type: application/json' --data @%s",
            host, port, local / EXAMPLE,
        )  # fmt: skip
        # Its own process group: the mlflow CLI and the uvicorn server it starts are stopped together.
        cmd, env = serve_command(local, host, port, workers), serve_env(tracking_uri)
        server = subprocess.Popen(cmd, env=env, start_new_session=True)
        try:
            return server.wait()
        finally:  # Ctrl-C or SIGTERM: stop the server before its files are removed
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait()


def main(argv: list[str] | None = None) -> int:
    """Exit 2 with one `error:` line when the model is not in the store or its files fail their check."""
    parser = argparse.ArgumentParser(prog="python -m rlpipe.policy.serve", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="models:/<name>@<alias>, models:/<name>/<version> or runs:/<id>/policy")
    parser.add_argument("--tracking-uri", required=True, help="the store that registered the model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        return serve(args.model, args.tracking_uri, args.host, args.port, args.workers)
    except RlpipeError as exc:
        log.error("error: %s", exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # `kill` as Ctrl-C: the server is stopped and its checked copy removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sys.exit(main())
