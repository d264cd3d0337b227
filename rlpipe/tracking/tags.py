"""Every `rlpipe.*` tag key in one place (runs and model versions). Plain strings, no mlflow import.

Run tags: who the run is (kind, sweep, configuration, seed), what it decided (verdicts), and what
reproduces it (git sha, data digest). Model-version tags: the verdicts, the transitions history,
the previous champion for rollback and the last evaluation run.
"""

from __future__ import annotations

KIND = "rlpipe.kind"
"""job (one training job), sweep (a sweep's parent run) or evaluation (a re-evaluation)."""
SWEEP_ID = "rlpipe.sweep_id"
CONFIG_HASH = "rlpipe.config_hash"
CONFIG_LABEL = "rlpipe.config_label"
"""Readable name of the configuration (agent-env-reward-timesteps), the same for every seed."""
SEED = "rlpipe.seed"
AGENT = "rlpipe.agent"
ENV = "rlpipe.env"
REWARD = "rlpipe.reward"
GIT_SHA = "rlpipe.git_sha"
DATA_DIGEST = "rlpipe.data_digest"
CALENDAR = "rlpipe.calendar"
"""The data's trading calendar in words (kind, bar, bars per year, closed time)."""
VERDICT = "rlpipe.verdict"
"""The run verdict (pass, retest, reject), on the job run and on its model version."""
VERDICT_REASON = "rlpipe.verdict_reason"
SWEEP_VERDICT = "rlpipe.sweep_verdict"
"""The configuration's sweep verdict (promote, retest, reject), on the job run and its model version."""
PROMOTABLE = "rlpipe.promotable"
"""'false' when the job was run with registry.promote=false: the sweep step never stages or crowns it."""
CLASSIFICATION = "rlpipe.classification"
DEPLOYMENT = "rlpipe.deployment"
REGIMES_MISSING = "rlpipe.regimes_missing"
MODEL_VERSION = "rlpipe.model_version"
ERROR = "rlpipe.error"
MODEL_URI = "rlpipe.model_uri"
MODEL_NAME = "rlpipe.model_name"
SOURCE_RUN_ID = "rlpipe.source_run_id"
CHAMPION_VERSION = "rlpipe.champion_version"
PROMOTED_CONFIGS = "rlpipe.promoted_configs"
PROCESS = "rlpipe.process"
"""host:pid:start-time of the process that opened the run: the reaper checks that it still lives."""
HEARTBEAT = "rlpipe.heartbeat"
"""Unix time the job last said it was alive (every minute while it trains)."""
# model-version tags
TRANSITION_PREFIX = "rlpipe.transition."
STAGE_REASON = "rlpipe.stage_reason"
PREVIOUS_CHAMPION = "rlpipe.previous_champion"
LAST_EVALUATION_RUN = "rlpipe.last_evaluation_run"
POLICY_SHA256 = "rlpipe.policy_sha256"
"""sha256 of the policy's file manifest, recorded when it is logged (on the logged model, the run
and the model version); a policy whose files do not match it is refused on load."""

JOB, SWEEP, EVALUATION = "job", "sweep", "evaluation"
"""Values of KIND."""
SINGLE = "single"
"""SWEEP_ID of a job run outside a multirun."""
