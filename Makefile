# One entry point for humans and CI: `make check` is exactly what .ci/run runs.
CARGO ?= cargo
PYTHON ?= python3

.PHONY: check fmt fmt-check lint test test-rust test-python python-deps azurite-deps build release demo test-prometheus bench packaging deb deny

check: fmt-check lint test

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: test-rust test-python

# The whole workspace: lightsout and crates/azure-ml-emulator (its unit tests live there).
# The blob tests run real Azurite (tests/azurite, pinned by its package-lock.json).
test-rust: azurite-deps
	$(CARGO) test --workspace --locked

# Microsoft's own Python SDK against the emulator, over HTTPS.
test-python: python-deps build
	LIGHTSOUT_BIN=$(CURDIR)/target/debug/lightsout $(PYTHON) -m pytest -q tests/python

python-deps:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# Azurite, Microsoft's Azure Storage emulator, for the blob tests (Node.js and npm needed).
azurite-deps:
	npm ci --prefix tests/azurite --no-audit --no-fund

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --release --locked

demo:
	$(CARGO) run --release -- demo

# A real Prometheus scraping the daemon against the emulator (.ci/run runs it after check).
test-prometheus:
	bash tests/prometheus/run.sh

bench:
	$(CARGO) bench --bench decide
	$(CARGO) bench --bench metrics
# Issue 7: unit, Dockerfile, Kubernetes manifests and the Debian package (root installs it
# with dpkg -i, checks it and purges it). CI runs it after `make check`.
packaging:
	bash tests/packaging/run.sh

# Licences, bans, sources and (where GitHub answers) RustSec advisories, by cargo-deny.
deny:
	bash tests/supply-chain/run.sh

# Only build the .deb (after `make release`).
deb: release
	tests/packaging/build-deb.sh
