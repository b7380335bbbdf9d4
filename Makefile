# Each target creates .venv on first use; re-installs when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench results zoo ui clean browser postgres

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded defaults: a Lipsum-FT ablation over L (5 values x 2 seeds) with
# zero-shot and FT reference rows, tracked in ./mlflow.db, then its ablation table built from MLflow.
demo: $(STAMP)
	$(BIN)/sweeper launch search_spaces/ablation-L.yaml
	$(BIN)/sweeper report ablation-L

ui: $(STAMP)
	$(BIN)/sweeper ui

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -q

# The HTML-report test renders in headless Chromium (Debian's `chromium`); without it, it skips.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "note: chromium not installed; the HTML-report browser test will skip"; }

# The PostgreSQL e2e test starts its own server from Debian's `postgresql`; without it, it skips.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null) \
		|| echo "note: postgresql not installed; the PostgreSQL tracking e2e test will skip"; }

# ruff's format check and lint over the whole tree, then mypy over sweeper, trainables and
# dashboards (settings in pyproject.toml). `ruff format .` and `ruff check --fix .` fix most findings.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The suite for every commit: every test not marked slow (unit and contract tests, no e2e sweep),
# in TEST_JOBS processes (pytest-xdist; each runs torch on one thread). --dist loadscope keeps a
# test module in one process, so its module-scoped fixtures are built once. Times: README, Tests.
TEST_JOBS ?= 2
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_JOBS) --dist loadscope

bench: $(STAMP)
	$(BIN)/python bench/bench_shapes.py
	$(BIN)/python bench/bench_step_cost.py
	$(BIN)/python bench/bench_eval_share.py
	$(BIN)/python bench/bench_harness.py --scaling
	$(BIN)/python bench/bench_asha.py
	$(BIN)/python bench/bench_posthoc.py
	# Trials logging at once: 1-32 writer processes on one sqlite store and on a PostgreSQL-backed server.
	$(BIN)/python bench/bench_many_writers.py
	# Reading a sweep of 1,000 and 10,000 trials back (load, history, status, report, HTML) from sqlite and from a
	# PostgreSQL-backed server; the generated stores are cached in /var/tmp/sweeper-bench-scale (first run: ~30 min).
	$(BIN)/python bench/bench_scale.py
	# A driver holding 100, 1,000 and 2,000 sleeping trials: bare Ray Tune, with MLflow, and `sweeper launch` (~40 min).
	$(BIN)/python bench/bench_driver.py
	$(BIN)/python bench/bench_startup.py --demo
	# Lipsum-FT's text bank against fresh texts: a 6-trial sweep in a scratch folder.
	BANK=$$(mktemp -d) && cd $$BANK && $(abspath $(BIN))/sweeper launch $(CURDIR)/search_spaces/lipsum-bank.yaml \
		&& $(abspath $(BIN))/sweeper report lipsum-bank --metrics id/acc,ood/avg_acc,id/ece,ood/avg_ece
	@if $(BIN)/python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/python bench/bench_gpu.py; else echo "bench_gpu.py: no CUDA device here, skipped"; fi

# The papers' findings on the embedded world (issue 9): runs every search_spaces/paper-*.yaml
# sweep into ./mlflow.db (99 trials, over 60 minutes on 2 cores: README), then writes RESULTS.md from MLflow.
# `python -m dashboards.results_file --launch --findings N` reruns one finding's sweeps and section only.
results: $(STAMP)
	$(BIN)/python -m dashboards.results_file --launch

zoo: $(STAMP)
	$(BIN)/sweeper zoo build

clean:
	rm -rf $(VENV) *.egg-info
