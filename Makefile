# The two commands that do everything on a fresh machine: `make demo` and `make test`.
SWIFT ?= swift
.PHONY: setup build demo test test-swift test-python bench clean conformance-sample

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

bench: setup
	scripts/bench-model-io.sh

clean:
	rm -rf .build demo-out conformance-sample
