# The two commands of the README:
#   make reproduce   install vidnb and its offline data, then run every chapter at the main preset: converged runs
#                    with intervals, the main job (report in reproduce/); PRESET=smoke: a code check in minutes
#   make test        install, then run every check CI runs (notebooks clean and exported, nbdev-test, pytest)
# On a machine with a GPU, pick your torch build: `make reproduce TORCH=torch PRESET=paper`.
# On a CPU machine whose index serves the CUDA build (PyPI on Linux), take the CPU one:
#   `make test TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cpu` (what .github/workflows/test.yml runs).
# Some chapters: `make reproduce CHAPTERS="gmlr dvae" PRESET=cpu` (the papers' sample sizes on a CPU: about 2 h 20 min
# on 2 cores, GMLR 61.5 min and the Dynamic VAE 76 min).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PRESET ?= main
OUT ?= reproduce
CHAPTERS ?=
# RESUME=1: reuse the chapters OUT holds finished at the same preset (a run stopped midway goes on from there)
RESUME ?=

.PHONY: install reproduce test
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e '.[dev,metrics,docs]'
	$(VENV)/bin/vidnb data prepare
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	  || echo 'chromium not installed: the browser tests of the docs site will be skipped'
	touch $@

install: $(VENV)/.installed

reproduce: install
	$(VENV)/bin/vidnb reproduce $(CHAPTERS) --preset $(PRESET) --out $(OUT) $(if $(RESUME),--resume)

test: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash .ci/test
