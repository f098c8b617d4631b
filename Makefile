# The two commands that do everything on a fresh machine: `make demo` and `make test`.
SWIFT ?= swift
.PHONY: setup build demo test test-swift test-python bench clean

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

bench: setup
	scripts/bench-model-io.sh

clean:
	rm -rf .build demo-out
