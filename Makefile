# The README's commands: `make run` (set up, fetch data, run the pipeline, show recommendations)
# and `make test`. Everything installs into .venv from the committed pins.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
DATA ?= datasets/ml-100k
OUTPUT ?= output
ARGS ?=
PIP_VERSION := 24.2
export TF_USE_LEGACY_KERAS := 1
export TF_ONEDNN_USE_SYSTEM_ALLOCATOR := 1

.PHONY: help setup data browser run report-check serve serve-check schedule airflow kubeflow test lint bench bench-serve bench-scale bench-example-gen bench-towers bench-item-item bench-quality bench-report bench-faults replay clean

help:
	@echo "make run    - set up .venv, fetch MovieLens-100K, run the pipeline, show recommendations"
	@echo "make test   - run the test suite (synthetic data only)"
	@echo "make bench  - time every component on MovieLens-100K (bench/results/)"
	@echo "make report-check - the run reports in headless Chromium; screenshots in build/report-check/"
	@echo "make serve  - serve the newest pushed model on http://localhost:8501/ (TF Serving REST, a page)"
	@echo "make serve-check - the served page in headless Chromium; screenshots in build/serve-check/"
	@echo "make bench-serve - recsys serve under 1, 8 and 64 clients, and through a swap (ARGS=--output DIR)"
	@echo "make schedule - run now, then again whenever a new span lands (recsys ingest)"
	@echo "make airflow - a local Airflow (standalone, http://localhost:8080) running the DAG daily"
	@echo "make kubeflow - compile the pipeline for Kubeflow Pipelines v2 (build/kubeflow/)"
	@echo "make bench-scale - the pipeline on synthetic MovieLens-1M and -10M shapes, DirectRunner and Dask (ARGS='--sizes 1m --runners dask')"
	@echo "make bench-example-gen - ExampleGen alone (ARGS=--data DIR --mode multi_processing)"
	@echo "make bench-towers - the towers' training step alone at 100K, 1M and 10M shapes (ARGS=--profile)"
	@echo "make bench-item-item - recommend's item-item term, whole rows against k neighbours"
	@echo "make bench-quality - every model on every protocol on MovieLens-100K"
	@echo "make bench-report - the seconds the run report adds to recsys run on MovieLens-100K"
	@echo "make bench-faults - kill, damage, fill the disk, run at once: what survives (bench/results/faults.md)"
	@echo "make replay - retrain week by week on MovieLens-100K, warm start vs cold (bench/results/)"
	@echo "make lint   - ruff"
	@echo "make clean  - remove the output folder"

$(BIN)/.installed: pyproject.toml requirements/constraints.txt
	@python=$$(scripts/find_python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$python"; \
	  "$$python" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	# LightFM's setup.py fails under PEP 517 (it sets an attribute on __builtins__)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt wheel
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt --no-use-pep517 lightfm
	@touch $@

setup: $(BIN)/.installed

$(DATA)/ratings.csv: | $(BIN)/.installed
	$(BIN)/recsys fetch --data $(DATA)

data: $(DATA)/ratings.csv

run: setup data
	$(BIN)/recsys run --data $(DATA) --output $(OUTPUT) $(ARGS)

serve: setup
	$(BIN)/recsys serve --output $(OUTPUT) $(ARGS)

# The served page's tests drive Debian's headless Chromium through its chromedriver.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq chromium chromium-driver; }

report-check: setup browser
	RECSYS_SCREENSHOTS=$(CURDIR)/build/report-check $(BIN)/python -m pytest -q \
	  tests/end_to_end/test_report_e2e.py $(ARGS)

serve-check: setup browser
	RECSYS_SCREENSHOTS=$(CURDIR)/build/serve-check $(BIN)/python -m pytest -q \
	  tests/end_to_end/test_serve_e2e.py -k page $(ARGS)

schedule: setup data
	$(BIN)/recsys run --watch --data $(DATA) --output $(OUTPUT) $(ARGS)

# Airflow's state (SQLite database, logs, admin password) lives in $(OUTPUT)/airflow; the DAG
# file is pipeline/dags/recsys_dag.py and reads RECSYS_* (RECSYS_SCHEDULE: cron, @daily, none).
airflow: setup data
	PATH="$(abspath $(BIN)):$$PATH" AIRFLOW_HOME=$(abspath $(OUTPUT))/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/pipeline/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	RECSYS_DATA=$(abspath $(DATA)) RECSYS_OUTPUT=$(abspath $(OUTPUT)) \
	$(BIN)/airflow standalone

kubeflow: setup
	$(BIN)/recsys kubeflow $(ARGS)

test: setup browser
	$(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup data
	$(BIN)/python -m bench.pipeline_bench --data $(DATA) --runs 3 $(ARGS)

bench-scale: setup
	$(BIN)/python -m bench.scale_bench $(ARGS)

bench-example-gen: setup data
	$(BIN)/python -m bench.example_gen_bench $(ARGS)

bench-towers: setup
	$(BIN)/python -m bench.towers_step $(ARGS)

bench-item-item: setup
	$(BIN)/python -m bench.item_item_latency $(ARGS)

bench-serve: setup
	$(BIN)/python -m bench.serve_bench --output $(OUTPUT) $(ARGS)

bench-quality: setup data
	$(BIN)/python -m bench.quality_bench --data $(DATA) $(ARGS)

bench-report: setup data
	$(BIN)/python -m bench.report_bench --data $(DATA) $(ARGS)

# Mounts a small tmpfs for the disk-full rows (as root; without root they are skipped).
bench-faults: setup
	$(BIN)/python -m bench.faults $(ARGS)

replay: setup data
	$(BIN)/python -m bench.replay --data $(DATA) $(ARGS)

clean:
	rm -rf $(OUTPUT)
