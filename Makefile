# The two commands that do everything on a fresh machine: `make demo` and `make test`.
SWIFT ?= swift
.PHONY: setup build demo test test-swift test-python bench clean conformance-sample conformance
.PHONY: real-models-env real-models

setup:
	scripts/setup.sh

build: setup
	$(SWIFT) build

demo: build
	scripts/demo.sh

# Build the tests once: a plain `swift build` before `swift test` would compile everything twice.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	.venv/bin/python -m pytest -q python/tests
	.venv/bin/python scripts/conformance/run.py sample

# A fixed sample of the ONNX backend node tests through tpat generate and nvcc (no GPU; about
# two minutes). The full run, on a GPU: docs/conformance.md.
conformance-sample: setup
	$(SWIFT) build
	.venv/bin/python scripts/conformance/run.py sample

# The full conformance run (docs/conformance.md): generation here, then the printed steps on a GPU.
conformance: build
	.venv/bin/python scripts/conformance/run.py collect
	.venv/bin/python scripts/conformance/run.py generate
	.venv/bin/python scripts/conformance/run.py bundle
	@echo "On a CUDA machine, with conformance-out/device* copied there:"
	@echo "  python3 scripts/conformance/device_check.py --out OUT conformance-out/device0/*"
	@echo "Then here: .venv/bin/python scripts/conformance/run.py results --check OUT/check.log --gpu NAME"

bench: setup
	scripts/bench-model-io.sh

clean:
	rm -rf .build demo-out conformance-sample

# Optional, apart from `make test`: the real-model corpus (docs/real-models.md). Its own
# environment, .venv-models/, with torch, torchvision and transformers (several GB: the torch
# wheel pulls NVIDIA's CUDA wheels), rebuilt only when scripts/real-models/requirements.txt changes.
MODELS_VENV := .venv-models
real-models-env: $(MODELS_VENV)/.requirements

$(MODELS_VENV)/.requirements: scripts/real-models/requirements.txt
	rm -rf $(MODELS_VENV)
	python3 -m venv $(MODELS_VENV)
	$(MODELS_VENV)/bin/python -m pip install -q --disable-pip-version-check -U pip
	$(MODELS_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $<
	cp $< $@

# Exports the corpus into models/real/, runs tpat generate over each model into real-models-out/
# and writes docs/real-models.md. REAL_MODELS_FLAGS passes options to run.py (e.g. --build).
REAL_MODELS_FLAGS ?=
real-models: real-models-env build
	$(MODELS_VENV)/bin/python scripts/real-models/export.py
	$(MODELS_VENV)/bin/python scripts/real-models/run.py $(REAL_MODELS_FLAGS)
