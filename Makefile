# rlpipe — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 5000
SERVER_PORT ?= 5001
SEEDS  ?= 1,6,11
TEST_WORKERS ?= 2
RAY_PORT ?= 6380
RAY_NODES ?= 2
RAY_CPUS ?= 1

.DEFAULT_GOAL := help
.PHONY: help env run test test-all test-reliability ui bench lint clean
.PHONY: server server-stop test-server bench-scale bench-gates bench-length bench-weekly bench-faults bench-paper
.PHONY: bench-routine bench-weekly-gates bench-loop cluster cluster-stop test-cluster bench-cluster

STORE  ?= sqlite:///$(CURDIR)/mlruns/mlflow.db

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-18s %s\n", $$1, $$2}'
	@echo "Variables (make <target> NAME=value):"
	@printf "  %-16s %s\n" "SEEDS=$(SEEDS)" "make run: the seeds" \
		"JOBS=N" "make run: N jobs at once (joblib launcher); default one at a time" \
		"ARGS='...'" "make run: more overrides, e.g. ARGS='timesteps=100000 reward=pnl'" \
		"PORT=$(PORT)" "make ui: the UI's port" \
		"STORE=URI" "make ui: the tracking store to show (default: the project's mlruns/mlflow.db)" \
		"RAY_PORT=$(RAY_PORT)" "make cluster: the Ray head's port" \
		"RAY_NODES=$(RAY_NODES) RAY_CPUS=$(RAY_CPUS)" "make cluster: nodes (the head included) and CPUs per node" \
		"BENCH_ARGS='...'" "make bench*: the benchmark's options" \
		"TEST_WORKERS=$(TEST_WORKERS)" "make test: pytest-xdist worker processes (one BLAS/torch thread each)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -c "from rlpipe.envs import kernels; kernels.warm_up()"  # the simulator compiled once, into numba's cache
	@touch $(STAMP)

env: $(STAMP) ## Create the virtual environment (torch first, then the project)

run: $(STAMP) ## Run the main job: a 3-seed sweep on the synthetic market (SEEDS, JOBS, ARGS: see below)
	$(BIN)/python -m rlpipe.train -m experiment=seed_sweep seed=$(SEEDS)$(if $(JOBS), hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)) $(ARGS)

test: $(STAMP) ## Run the default test suite (a few minutes on 2 cores; TEST_WORKERS=2 processes, each test file in one)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-reliability: $(STAMP) ## The slow kill / resume / ownership / reuse tests (README "Reliability"), a champion degraded and rolled back, the routine's steps and resume (CI runs them; a few minutes)
	$(BIN)/python -m pytest -q -m slow tests/cli/test_resume.py tests/jobs/test_checkpoints.py \
		tests/tracking/test_reaper.py tests/jobs/test_sweep_job.py tests/jobs/test_paper_job.py \
		tests/jobs/test_routine_job.py tests/cli/test_routine.py tests/jobs/test_asof.py tests/test_routine_markets.py

test-all: $(STAMP) ## Run every test, with the peer libraries as oracles and every launcher (installs extras)
	$(BIN)/pip install -q -e '.[oracles,slurm,ray,server]'
	$(BIN)/python -m pytest -q -m ""

ui: $(STAMP) ## Start the MLflow UI on 127.0.0.1 (PORT, default 5000) over the project's store (or STORE=URI)
	@mkdir -p mlruns
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --host 127.0.0.1 --port $(PORT) --workers 2 \
		--backend-store-uri $(STORE) --default-artifact-root $(CURDIR)/mlruns/artifacts

serve: $(STAMP) ## Serve a registered policy on 127.0.0.1:$(PORT), its files checked first (MODEL=, default models:/rlpipe-policy@champion)
	$(BIN)/python -m rlpipe.policy.serve $(or $(MODEL),models:/rlpipe-policy@champion) --port $(PORT) \
		--tracking-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlruns/mlflow.db}"

server: $(STAMP) ## MLflow tracking server on PostgreSQL at 127.0.0.1:$(SERVER_PORT), in the background (installs the `server` extra)
	@$(BIN)/python -c 'import pgserver, psycopg' 2>/dev/null || $(BIN)/pip install -q -e '.[server]'
	$(BIN)/python -m rlpipe.server start --port $(SERVER_PORT)

server-stop: ## Stop the tracking server and its PostgreSQL
	$(BIN)/python -m rlpipe.server stop

test-server: $(STAMP) ## A sweep, the sweep step, a rollback and a re-evaluation through a real server (installs the `server` extra)
	@$(BIN)/python -c 'import pgserver, psycopg' 2>/dev/null || $(BIN)/pip install -q -e '.[server]'
	$(BIN)/python -m pytest -q -m slow tests/server/test_tracking_server.py

cluster: $(STAMP) ## Local Ray cluster in the background: a head on 127.0.0.1:RAY_PORT and RAY_NODES-1 nodes joined to it, RAY_CPUS CPUs each (installs the `ray` extra)
	@$(BIN)/python -c 'import ray, hydra_plugins.hydra_ray_launcher' 2>/dev/null || $(BIN)/pip install -q -e '.[ray]'
	$(BIN)/python -m rlpipe.ray_cluster start --port $(RAY_PORT) --nodes $(RAY_NODES) --num-cpus $(RAY_CPUS)

cluster-stop: ## Stop the local Ray cluster: every process of its nodes, and nothing else
	$(BIN)/python -m rlpipe.ray_cluster stop

test-cluster: $(STAMP) ## A sweep and a PBT population on a 2-node Ray cluster with the tracking server as store (installs the `ray` and `server` extras; a few minutes)
	@$(BIN)/python -c 'import ray, hydra_plugins.hydra_ray_launcher, pgserver, psycopg' 2>/dev/null || $(BIN)/pip install -q -e '.[ray,server]'
	$(BIN)/python -m pytest -q -m "" tests/test_ray_cluster.py

bench-cluster: $(STAMP) ## Per-job overhead on Ray (local 2-node cluster) vs joblib, the same 4-job sweep into the tracking server (a few minutes)
	@$(BIN)/python -c 'import ray, hydra_plugins.hydra_ray_launcher, pgserver, psycopg' 2>/dev/null || $(BIN)/pip install -q -e '.[ray,server]'
	$(BIN)/python -m benchmarks.cluster $(BENCH_ARGS)

bench-scale: $(STAMP) ## Sweep scale-out figures: basic vs joblib launcher, neighbour jobs, sqlite vs server (minutes)
	@$(BIN)/python -c 'import pgserver, psycopg' 2>/dev/null || $(BIN)/pip install -q -e '.[server]'
	$(BIN)/python -m benchmarks.scale $(BENCH_ARGS)

bench-gates: $(STAMP) ## False-promotion rate and power of the gates: K sweeps on martingale and planted-signal markets (an hour or more)
	$(BIN)/python -m benchmarks.gates $(BENCH_ARGS)

bench-weekly-gates: $(STAMP) ## False-promotion rate and power of the weekly sweep step: K scaled-down weeks per market, each in a fresh store (BENCH_ARGS="--weeks 2" chains a second week; ~2 min a week on 2 cores, K=6: 25+ minutes)
	$(BIN)/python -m benchmarks.weekly_gates $(BENCH_ARGS)

bench-length: $(STAMP) ## Cost of scoring checkpoints on validation, the lengths kept, and resume after kill -9 (minutes)
	$(BIN)/python -m benchmarks.length $(BENCH_ARGS)

bench-weekly: $(STAMP) ## The full weekly allocation (35.5M steps) and a PBT population: wall time, steps/s, PBT overhead per round (20+ minutes)
	$(BIN)/python -m benchmarks.weekly $(BENCH_ARGS)

bench-faults: $(STAMP) ## What a store fault mid-job costs at the default tracking.retry_s: read-only sqlite, a stopped server (a minute)
	$(BIN)/python -m benchmarks.faults

bench-paper: $(STAMP) ## Paper trading speed: a year of hourly bars from a file, one new bar in follow mode (a minute)
	$(BIN)/python -m benchmarks.paper

bench-routine: $(STAMP) ## The routine replayed over 8 weeks of a scaled-down weekly allocation: per-step champion, child vs parent, time split (15-20 minutes)
	$(BIN)/python -m benchmarks.routine $(BENCH_ARGS)

bench-loop: $(STAMP) ## What a sweep costs beyond training: refusal of a bad config, the make run sweep vs its learn() time with the per-job parts, basic vs joblib (vs Ray) on 8 jobs (BENCH_ARGS=--suite times the test suite too; ~10 minutes)
	$(BIN)/python -m benchmarks.loop $(BENCH_ARGS)

bench: $(STAMP) ## Side-by-side throughput tables vs. gym-anytrading and SB3 defaults (installs the `bench` extra)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: $(STAMP) ## Ruff (lint + format check) and mypy on the package
	$(BIN)/ruff check rlpipe tests benchmarks
	$(BIN)/ruff format --check rlpipe tests benchmarks
	$(BIN)/mypy rlpipe

clean: ## Remove Hydra outputs (keeps mlruns/ and the environment)
	rm -rf outputs multirun
