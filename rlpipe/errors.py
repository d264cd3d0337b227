"""Errors a user can act on: each says what was wrong and where; and which run an error ended."""

RUN_ID_ATTR = "rlpipe_run_id"


def mark_run(exc: BaseException, run_id: str) -> None:
    """Note on `exc` the run it ended (the innermost run wins): the command's failure names that run,
    and a sweep counts the job's failure once, by it."""
    if getattr(exc, RUN_ID_ATTR, None) is None:
        setattr(exc, RUN_ID_ATTR, run_id)


def run_id_of(exc: BaseException) -> str | None:
    """The run `exc` ended (`mark_run`, called by `Tracker.run`), or None when it ended none."""
    return getattr(exc, RUN_ID_ATTR, None)


class RlpipeError(Exception):
    """Base class for errors caused by user input (data, config, slices)."""


class DataError(RlpipeError):
    """Market data failed validation (names the file, the column and the first bad timestamp)."""


class SliceError(RlpipeError):
    """Slice declarations are inconsistent with each other or with the data."""


class ConfigError(RlpipeError):
    """A configuration value is invalid (names the config key)."""


class RegistryError(RlpipeError):
    """A registry operation cannot be done (names the model, version or alias)."""


class PolicyError(RlpipeError):
    """A stored policy cannot be used: its files fail their integrity record or its input is wrong."""


class StoreError(RlpipeError):
    """The tracking store cannot be reached or stays unwritable (names tracking.uri)."""


class StoreUnavailable(StoreError):
    """The store went away or stayed read-only past `tracking.retry_s` in the middle of a command."""


class ServerError(RlpipeError):
    """The local tracking server or its PostgreSQL cannot be started, reached or stopped."""


class ClusterError(RlpipeError):
    """The local Ray cluster of `make cluster` cannot be started or stopped (names the node and its log)."""


class MissingArtifactError(StoreError):
    """A run's recorded artifact is gone from the store (names the run and the file)."""


class Terminated(BaseException):
    """SIGTERM, raised in the job's main thread so that its run is closed as KILLED, not left RUNNING."""


class CheckpointError(RlpipeError):
    """A training checkpoint cannot be used to resume: missing, corrupt, or from another job."""


class JobBusyError(CheckpointError):
    """The job is being run by a live process (names it)."""
