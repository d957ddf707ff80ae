# Two commands do all set-up on a fresh machine (Python 3.11, Node.js and npm present):
#   make synth   virtual environment + pinned deps, then the real `cdk synth` of app.py
#   make test    the whole suite: lint, format, types, tests with coverage, then the
#                compliance checkers (cdk-nag, cfn-lint, checkov) on both apps' templates
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# checkov conflicts with the test toolchain's pins: it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
# jsii runs the CDK's JavaScript with the `node` first on PATH: use the pinned Node.js LTS.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# No telemetry, no update notices: synth must work offline and without credentials.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: deps synth test lint typecheck unit compliance bench mutation clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip==25.3
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

deps: $(BIN)/.installed node_modules/.installed

synth: deps
	rm -rf cdk.out
	cdk synth --quiet --no-notices --ci > /dev/null
	$(BIN)/python tools/synth_summary.py cdk.out

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

unit: deps
	$(BIN)/pytest --cov --cov-report=term

# Both apps through the real `cdk synth` with every cdk-nag pack as a plugin (a finding fails
# the synth), then cfn-lint and checkov on the templates (tools/compliance.py prints the counts).
compliance: deps $(CHECKOV_VENV)/.installed
	rm -rf cdk.out.app cdk.out.every-option
	cdk synth --quiet --no-notices --ci --output cdk.out.app > /dev/null
	cdk synth --quiet --no-notices --ci --output cdk.out.every-option \
		--app "$(BIN)/python -m tests.apps.every_option" > /dev/null
	$(BIN)/python tools/compliance.py --checkov $(CHECKOV_VENV)/bin/checkov \
		cdk.out.app cdk.out.every-option

test: lint typecheck unit compliance

bench: deps
	$(BIN)/python tools/bench.py

# Mutation testing of the Lambda runtime with mutmut (tools/mutation.py): a score per module,
# equivalent mutants excluded (tests/mutation/equivalents.toml); fails below the targets.
# Not part of `make test`: it runs the runtime tests once per mutant (about an hour on 2 cores).
# `make mutation MODULES="decision apply"` mutates only those modules.
$(BIN)/.mutation-installed: requirements-mutation.txt $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-mutation.txt
	touch $@

mutation: deps $(BIN)/.mutation-installed
	$(BIN)/python tools/mutation.py $(MODULES)

clean:
	rm -rf cdk.out cdk.out.app cdk.out.every-option .pytest_cache .mypy_cache .ruff_cache .coverage build dist *.egg-info
