# Two commands set everything up on a fresh clone with only python3:
#   make lab    opens the course in JupyterLab
#   make test   runs the whole test suite
# Both create .venv and install the project (-e ".[dev]") when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# nbgrader runs `alembic` in a subprocess, so the venv's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)
STAMP  := $(VENV)/.installed
ASSIGNMENTS := $(notdir $(patsubst %/,%,$(wildcard solutions/*/)))
PYTEST_ARGS ?=

.PHONY: help setup test lab release bench bench-ops bench-routes bench-train bench-epoch bench-notebooks grade clean

help:
	@echo "make lab              open the course in JupyterLab"
	@echo "make test             run the whole test suite"
	@echo "make release          regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make bench            all benchmarks (cnnlib vs naive loops vs PyTorch CPU when installed)"
	@echo "make grade A=01_images_and_kernels   autograde every submission under submitted/"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# OpenBLAS's idle threads sleep after 2^21 cycles instead of 2^28 (about 0.1 s of spinning after every
# GEMM): a LeNet step takes the same time, and cnnlib then runs large convolutions' blocks on all the
# cores (cnnlib/functional.py, "Blocks on several threads"). An OPENBLAS_THREAD_TIMEOUT already set wins.
BLAS_ENV := OPENBLAS_THREAD_TIMEOUT=$(or $(OPENBLAS_THREAD_TIMEOUT),21)

# Root (containers, some course servers) needs --allow-root; LAB_ARGS adds more (e.g. --no-browser --port=8899).
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	env $(BLAS_ENV) $(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks $(ROOT_FLAG) $(LAB_ARGS)

release: $(STAMP)
	@for a in $(ASSIGNMENTS); do \
	  $(BIN)/nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; \
	done

bench: bench-ops bench-routes bench-train bench-epoch bench-notebooks

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow a current numpy; unset them for benchmarks only. The
# benchmarks run with BLAS_ENV, as `make lab` runs the course.
bench-ops: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BLAS_ENV) $(BIN)/python benchmarks/bench_ops.py

bench-routes: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BLAS_ENV) $(BIN)/python benchmarks/bench_routes.py

bench-train: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BLAS_ENV) $(BIN)/python benchmarks/bench_train.py --memory

bench-epoch: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BLAS_ENV) $(BIN)/python benchmarks/bench_epoch.py

bench-notebooks: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BLAS_ENV) $(BIN)/python benchmarks/bench_notebooks.py

grade: $(STAMP)
	env $(BLAS_ENV) $(BIN)/cnn-grade $(A)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
