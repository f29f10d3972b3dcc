# pipectl's checks. `make test` is THE test command: the README, CI
# (.github/workflows/ci.yml) and .ci/run call it. On a fresh clone it builds
# what the tests need (a Python venv from notebooks/requirements.txt plus
# the test tools, and the Spark engine's from notebooks/requirements-spark.txt)
# and runs every check once.
#
# Benchmarks are not tests: `make bench` (docs/BENCHMARKS.md), and
# `make bench-smoke`, a seconds-long run that keeps the suite from rotting.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go

# The tests share one venv and MLflow store, built once per machine and
# reused: the Go tests (plugins/local, the emulator, the end-to-end CLI
# tests) and pytest all use it.
export PIPECTL_TEST_STATE ?= $(CURDIR)/.pipectl/test
DEV_PYTHON := $(PIPECTL_TEST_STATE)/dev-python
# The Spark engine's venv (notebooks/requirements-spark.txt): pyspark and
# delta-spark on top of the runtime pins, kept apart so the pandas venv
# stays small.
SPARK_PYTHON := $(PIPECTL_TEST_STATE)/spark-python

.PHONY: test lint fmt-check vet actionlint py-test py-test-spark python-spark go-test fuzz-smoke validate python proto bench bench-smoke run bin/pipectl

# The README's quick start: build pipectl once (a built binary keeps the
# documented exit codes; `go run` turns them all into 1), then run the
# example pipeline locally.
run: bin/pipectl
	bin/pipectl run sentiment

bin/pipectl:
	$(GO) build -o bin/pipectl ./cmd/pipectl

test: lint py-test py-test-spark go-test fuzz-smoke validate

lint: fmt-check vet actionlint

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

actionlint:
	scripts/actionlint.sh

# The managed venv (what `pipectl run` uses) plus pytest, hypothesis and
# ruff. The file holds the interpreter's path.
$(DEV_PYTHON): notebooks/requirements.txt notebooks/requirements-dev.txt
	@mkdir -p $(PIPECTL_TEST_STATE)
	py=$$($(GO) run ./cmd/pipectl --state-dir $(PIPECTL_TEST_STATE) dev python); \
	"$$py" -m pip install --quiet --disable-pip-version-check -r notebooks/requirements-dev.txt; \
	echo "$$py" > $@

python: $(DEV_PYTHON)
	@cat $(DEV_PYTHON)

$(SPARK_PYTHON): notebooks/requirements.txt notebooks/requirements-spark.txt notebooks/requirements-dev.txt
	@mkdir -p $(PIPECTL_TEST_STATE)
	py=$$($(GO) run ./cmd/pipectl --state-dir $(PIPECTL_TEST_STATE) dev python --spark); \
	"$$py" -m pip install --quiet --disable-pip-version-check -r notebooks/requirements-dev.txt; \
	echo "$$py" > $@

python-spark: $(SPARK_PYTHON)
	@cat $(SPARK_PYTHON)

# The Spark engine's tests: local[2], one session per test module; the
# pandas venv skips them. Bounded: a hung JVM fails the target.
py-test-spark: $(SPARK_PYTHON)
	py=$$(cat $(SPARK_PYTHON)); \
	cd notebooks && PIPECTL_STATE_DIR=$(PIPECTL_TEST_STATE) timeout 900 "$$py" -m pytest -q tests/test_spark_*.py

py-test: $(DEV_PYTHON)
	py=$$(cat $(DEV_PYTHON)); \
	cd notebooks && "$$py" -m ruff check . && "$$py" -m ruff format --check . && "$$py" -m pytest -q
	py=$$(cat $(DEV_PYTHON)); files=$$(find bench data internal plugins -name '*.py'); \
	"$$py" -m ruff check --config notebooks/pyproject.toml $$files && \
	"$$py" -m ruff format --check --config notebooks/pyproject.toml $$files
	"$$(cat $(DEV_PYTHON))" data/sample/generate.py --check

go-test: $(DEV_PYTHON)
	PIPECTL_TEST_PYTHON=$$(cat $(DEV_PYTHON)) $(GO) test -race -timeout 25m ./...

# A short fuzzing run per target (the seed corpora run in go-test); see
# docs/RELIABILITY.md for the long runs. Budgets are execution counts, not
# durations: Go 1.26's coordinator can fail a duration-bounded run with a bare
# "context deadline exceeded" at the deadline on a loaded machine
# (go.dev/issue/75804; it failed CI once), and a count has no deadline to race.
FUZZ_LOAD_EXECS ?= 10000x
FUZZ_SUBSTITUTE_EXECS ?= 80000x
fuzz-smoke:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZ_LOAD_EXECS) ./engine/spec
	$(GO) test -run '^$$' -fuzz '^FuzzSubstitute$$' -fuzztime $(FUZZ_SUBSTITUTE_EXECS) ./engine/spec

validate:
	$(GO) run ./cmd/pipectl validate

# Regenerate the executor protocol's Go code after editing executor.proto.
proto:
	$(GO) generate ./engine/plugin

# Benchmarks (docs/BENCHMARKS.md): medians of several runs, each a ratio
# against a baseline run in the same invocation. `make bench` takes about half
# an hour on 2 cores; `make bench-smoke` runs every benchmark once at reduced
# sizes (1.5 minutes once the venvs exist), so the suite never rots. Neither is part of `make
# test`: benchmarks are not tests. B5 (the million-row run) lives in
# bench/scale/.
BENCH_ARGS ?=
bench:
	python3 bench/bench.py $(BENCH_ARGS)
	@$(MAKE) --no-print-directory bench-scale SCALE_ARGS=

bench-smoke:
	python3 bench/bench.py --smoke $(BENCH_ARGS)
	@$(MAKE) --no-print-directory bench-scale SCALE_ARGS=--smoke

.PHONY: bench-scale
bench-scale:
	@if [ -f bench/scale/run.sh ]; then bash bench/scale/run.sh $(SCALE_ARGS); \
	else echo "bench: B5 skipped: bench/scale/run.sh is not here"; fi
