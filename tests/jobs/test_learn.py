"""The one training path: `jobs.learn.learn` trains a job to its timesteps, scores its candidate
lengths, and continues a saved state for exactly the steps its `Budget` gives."""

from __future__ import annotations

from rlpipe.jobs.checkpoints import save_agent
from rlpipe.jobs.learn import Budget, Start, learn
from rlpipe.jobs.prepare import prepare
from rlpipe.jobs.state_folder import Saved, StateFolder
from rlpipe.tracking.tracker import Tracker

ROLLOUT = 4096  # the smoke preset's PPO rollout (64 envs x 64 steps)


def test_a_tiny_job_learns_to_its_timesteps_and_keeps_a_scored_length(smoke_job, tracking_uri):
    job = smoke_job("seed=2", f"timesteps={2 * ROLLOUT}", f"lengths=[{ROLLOUT}]")
    assert Budget.of(job) == Budget(2, 2, 2 * ROLLOUT, None, (ROLLOUT, 2 * ROLLOUT))
    data = prepare(job.data, job.slices)
    with Tracker(tracking_uri, "rlpipe").run(job.run_name, {}) as run:
        learned = learn(job, data, "cpu", run, None, None)
    assert learned.agent.num_timesteps == 2 * ROLLOUT and learned.resumed_from == 0
    assert learned.choice is not None
    assert [p.timesteps for p in learned.choice.points] == [ROLLOUT, 2 * ROLLOUT]
    assert learned.checkpoint_s > 0 and learned.learn_s > learned.checkpoint_s


def test_a_budget_of_more_steps_continues_a_saved_state_without_scoring_lengths(
    smoke_job, tracking_uri, tmp_path
):
    job = smoke_job("seed=3", f"timesteps={ROLLOUT}", f"lengths=[{ROLLOUT // 2}]")
    data = prepare(job.data, job.slices)
    folder = StateFolder(tmp_path / "state", "delete it")
    tracker = Tracker(tracking_uri, "rlpipe")
    with tracker.run(job.run_name, {}) as run:
        first = learn(job, data, "cpu", run, None, None, budget=Budget(3, 3, 3 * ROLLOUT, ROLLOUT))
        save_agent(folder, first.agent, Saved(run.run_id, 0, None))
    saved = folder.read()
    assert first.choice is None  # this budget scores no lengths, whatever `lengths` says
    assert saved is not None and saved.num_timesteps == ROLLOUT
    with tracker.run(job.run_name, {}) as run:
        again = learn(job, data, "cpu", run, None, Start.of(folder, saved, exact=False),
                      budget=Budget(4, 10, 3 * ROLLOUT, ROLLOUT))  # fmt: skip
    assert again.resumed_from == ROLLOUT and again.agent.num_timesteps == 2 * ROLLOUT
    assert Start.of(folder, Saved("run", 0, None)) is None  # a job stopped before its first state
