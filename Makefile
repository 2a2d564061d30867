# Two entry points (README quick start): `make reproduce` and `make test`.
# Everything installs into ./.venv from this file and pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= synthetic
TARGET ?= reproduce_tables
CORES  ?= all
# torch/torchvision: the releases this project is tested with (local wheels on the dev machines).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

STAMP := $(VENV)/.installed

.PHONY: install reproduce smoke dry-run test lint clean-results

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q $(TORCH_PINS)
	# xtcocotools' PyPI wheel is compiled against numpy 1 and fails to import under numpy 2
	# ("numpy.dtype size changed"): build it from source against the installed numpy.
	$(PY) -m pip install -q numpy cython
	$(PY) -m pip install -q --no-binary xtcocotools --no-build-isolation xtcocotools
	$(PY) -m pip install -q -e '.[test,slurm]'
	# the bench's peers (the `peers` extra): scipy for the HigherHRNet-style grouping, Ultralytics
	# YOLO11-pose without its dependency pins (they would replace the pinned torch)
	$(PY) -m pip install -q scipy psutil requests
	$(PY) -m pip install -q --no-deps ultralytics ultralytics-thop
	# what Ultralytics' trainer (posedet peer-train) imports beyond that; neither pulls torch:
	# polars (results.csv), nvidia-ml-py (GPU stats); opencv, matplotlib, pillow, pyyaml, psutil
	# and requests are installed above
	$(PY) -m pip install -q polars nvidia-ml-py
	YOLO_OFFLINE=1 YOLO_CONFIG_DIR=$(VENV)/ultralytics_settings $(PY) -c "import ultralytics.engine.trainer, ultralytics.models.yolo.pose, polars"
	$(PY) -c "import torch, torchvision, timm, xtcocotools.cocoeval, pycocotools.cocoeval, faster_coco_eval, snakemake, snakemake_executor_plugin_slurm; print('install ok: torch', torch.__version__)"
	touch $@

# Debian's chromium for the headless-browser test of reports/<preset>/index.html (root + apt
# only; elsewhere that test skips with a message).
install: $(STAMP)
	@sh scripts/install_chromium.sh || echo "install_chromium.sh failed: tests/test_browser_report.py will skip"

# The workflow, then Snakemake's own report (rule code, runtimes, job graph) beside index.html.
SNAKEMAKE = $(VENV)/bin/snakemake --cores $(CORES) --config preset=$(PRESET) $(CONFIG)

reproduce: install
	$(SNAKEMAKE) -- $(TARGET)
	mkdir -p reports/$(PRESET)
	$(SNAKEMAKE) --report reports/$(PRESET)/snakemake_report.html -- $(TARGET)

smoke: install
	$(MAKE) reproduce PRESET=smoke

dry-run: install
	$(SNAKEMAKE) -n -- $(TARGET)

test: install
	$(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/snakemake --lint

clean-results:
	rm -rf results/smoke results/synthetic reports/smoke reports/synthetic .snakemake
