"""How a command ends when something fails: a user error is one line and exit status 2, a bug keeps
its traceback and exits 1.

User errors are rlpipe's own (`RlpipeError`: data, slices, config, registry) and Hydra's config
errors (a bad override, an unknown option, a wrong type). `HYDRA_FULL_ERROR=1` adds the traceback.
In a multirun a failed job does not stop the sweep: its failure is written to `failure.json` in the
job's Hydra folder, and the sweep callback reads them back, prints one line per failed job and
picks the exit status.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from omegaconf.errors import OmegaConfBaseException

from rlpipe.cli.collection import exit_without_final_collection
from rlpipe.cli.compose import renamed_in
from rlpipe.errors import RlpipeError, StoreUnavailable, Terminated

USER_ERROR = 2
"""Exit status of a command stopped by a user error (data, config, slices, store)."""
BUG = 1
"""Exit status of anything else (a traceback to report)."""
FAILURE_FILE = "failure.json"
TRACEBACK_ARTIFACT = "error/traceback.txt"
# OmegaConf's error text ends with lines about its own node types: noise for a user.
_NOISE = ("reference_type=", "object_type=")
_SEARCH_PATH = "Config search path:"
TRACEBACK_FILE = Path("error") / "traceback.txt"
"""Where, under the command's output folder, the traceback of an error the store could not take goes."""


def is_user_error(exc: BaseException | None) -> bool:
    """An rlpipe error (also as the cause of another), or a config error Hydra reports without a traceback."""
    if _rlpipe_error(exc) is not None:
        return True
    if isinstance(exc, InstantiationException):  # a constructor crashed, and not with an RlpipeError
        return False
    return isinstance(exc, CompactHydraException | OmegaConfBaseException)


def _rlpipe_error(exc: BaseException | None) -> RlpipeError | None:
    while exc is not None:  # e.g. a ConfigError raised by a dataclass that Hydra instantiated
        if isinstance(exc, RlpipeError):
            return exc
        exc = exc.__cause__
    return None


def one_line(exc: BaseException) -> str:
    """The error's message on one line (Hydra's, with the OmegaConf error behind it)."""
    own = _rlpipe_error(exc)
    text = str(own if own is not None else exc)
    if own is None and isinstance(exc.__cause__, OmegaConfBaseException):
        text += "\n" + str(exc.__cause__)
    text = text.split(_SEARCH_PATH)[0]  # an unknown option: the options are named, the search path is noise
    out = ""
    for part in (p.strip() for p in text.splitlines()):
        if part and not part.startswith(_NOISE):
            out = part if not out else out + (" " if out.endswith((":", ".")) else "; ") + part
    return renamed_in(out) or out or type(exc).__name__


@dataclass(frozen=True)
class Failure:
    """Why a command or a sweep job failed, as the one line a user reads."""

    message: str
    user_error: bool
    run_id: str | None = None
    """The run the failure ended (recorded FAILED with its traceback, unless the store went away),
    if one was opened: the sweep counts the job's failure once, by it."""
    job: str = ""
    """In a multirun: the job's number and overrides."""
    traceback_file: str | None = None
    """A local copy of the traceback, written when the store itself failed and could not keep it."""

    @classmethod
    def of(
        cls, exc: BaseException, run_id: str | None = None, job: str = "", folder: Path | None = None
    ) -> Failure:
        """The failure of `exc`; when the store went away, its traceback is kept under `folder`
        (default: the command's output folder)."""
        kept = keep_traceback(exc, folder or output_folder()) if _store_gone(exc) else None
        return cls(one_line(exc), is_user_error(exc), run_id, job, str(kept) if kept else None)

    def line(self) -> str:
        where = f"job {self.job}: " if self.job else ""
        run = ""
        if self.run_id and self.traceback_file:  # the store went away: the run could not be closed
            run = f" (run {self.run_id})"
        elif self.run_id:
            run = f" (recorded as FAILED run {self.run_id}; traceback in its artifact {TRACEBACK_ARTIFACT})"
        kept = f"; full traceback in {self.traceback_file}" if self.traceback_file else ""
        return f"error: {where}{self.message}{run}{kept}"

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILURE_FILE).write_text(json.dumps(asdict(self)))


def _store_gone(exc: BaseException) -> bool:
    return isinstance(_rlpipe_error(exc), StoreUnavailable)


def output_folder() -> Path:
    """The command's Hydra output folder (a multirun job's own), else the working directory."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def keep_traceback(exc: BaseException, folder: Path) -> Path | None:
    """Write `exc`'s traceback to `<folder>/error/traceback.txt` (the store could not take it);
    None when the folder cannot be written either (the one line still says what happened)."""
    path = folder / TRACEBACK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path.resolve()


def read_failures(sweep_dir: Path) -> list[Failure]:
    """The failures the jobs of a multirun wrote under its folder, in job order."""
    files = sorted(sweep_dir.rglob(FAILURE_FILE), key=lambda p: (len(p.parts), str(p)))
    return [Failure(**json.loads(p.read_text())) for p in files]


def exit_status(failures: list[Failure], unexplained: int = 0) -> int:
    """2 when every failure is a user error, else 1 (`unexplained`: failed runs no job explained)."""
    return USER_ERROR if failures and not unexplained and all(f.user_error for f in failures) else BUG


def full_error() -> bool:
    """Whether the user asked for tracebacks (Hydra's own switch)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def end_command(exc: Exception, run_id: str | None = None) -> NoReturn:
    """End a command on `exc` (call it in the `except` block): a user error -> one line, exit 2;
    anything else is re-raised with its traceback, noting the FAILED run."""
    if not is_user_error(exc):
        if run_id:
            exc.add_note(f"recorded as FAILED run {run_id} ({TRACEBACK_ARTIFACT})")
        raise exc
    if full_error():
        traceback.print_exception(exc)
    sys.stderr.write(Failure.of(exc, run_id).line() + "\n")
    raise SystemExit(USER_ERROR) from None


KILLED_BY = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""Exit statuses of a command ended by Ctrl-C or SIGTERM (128 + the signal, as shells report)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated("killed by SIGTERM")


class _HydraReportHeld:
    """`sys.stderr` while a command runs: what Hydra's own error report (`run_and_report`) writes is
    held back, so that a config error it reports becomes our one line; all else passes at once."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.held: list[str] = []

    def write(self, text: str) -> int:
        caller = sys._getframe(1)
        if caller.f_code.co_name == "run_and_report" and caller.f_globals.get("__name__", "").startswith(
            "hydra."
        ):
            self.held.append(text)
            return len(text)
        return int(self.stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def run_main(main: Callable[[], object]) -> None:
    """Call a `@hydra.main` function so that a config error Hydra reported is one line and exit status 2.

    Hydra composes the config before any of our code runs and prints a composition error itself
    (4-9 lines), then exits 1; its report is held back here and replaced by one `error:` line
    naming the key (`HYDRA_FULL_ERROR=1` still shows everything). SIGTERM is raised as
    `Terminated` (like Ctrl-C's KeyboardInterrupt), so an open run is closed as KILLED on the way
    out; either ends the command with one line and 143 / 130.
    """
    exit_without_final_collection()
    signal.signal(signal.SIGTERM, _raise_terminated)
    real, report = sys.stderr, _HydraReportHeld(sys.stderr)
    sys.stderr = report
    try:
        main()
    except (KeyboardInterrupt, Terminated) as stop:
        sig = signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM
        real.write(f"error: killed by {sig.name}; the open run, if any, is marked KILLED\n")
        raise SystemExit(KILLED_BY[sig]) from None
    except SystemExit as stop:
        # Hydra prints an error it caught, then calls sys.exit(1) inside its `except` block: the
        # error it handled is the SystemExit's context.
        if stop.code == BUG and not stop.__suppress_context__ and is_user_error(stop.__context__):
            report.held.clear()
            real.write(Failure.of(stop.__context__).line() + "\n")  # type: ignore[arg-type]
            raise SystemExit(USER_ERROR) from None
        raise
    except Exception as exc:  # HYDRA_FULL_ERROR=1: Hydra re-raised it; the traceback was asked for
        if not is_user_error(exc):
            raise
        traceback.print_exception(exc, file=real)
        real.write(Failure.of(exc).line() + "\n")
        raise SystemExit(USER_ERROR) from None
    finally:
        sys.stderr = real
        real.writelines(report.held)  # a bug's report, as Hydra wrote it
