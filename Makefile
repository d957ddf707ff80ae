# Two commands do all set-up on a fresh machine (Python 3.11, Node.js and npm present):
#   make synth   virtual environment + pinned deps, then the real `cdk synth` of app.py
#   make test    the whole suite: lint, format, types, tests with coverage, then the
#                compliance checkers (cdk-nag, cfn-lint, checkov) on both apps' templates and
#                the fidelity checks (parliament, asl-validator, statelint, botocore's models,
#                AWS's limits, resource and key policies) on them and the max-names app
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# checkov conflicts with the test toolchain's pins: it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
CHROMIUM := /usr/bin/chromium
# jsii runs the CDK's JavaScript with the `node` first on PATH: use the pinned Node.js LTS.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# No telemetry, no update notices: synth must work offline and without credentials.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: deps synth test lint typecheck unit compliance fidelity integ-synth integ bench poll-bench decision-bench mutation clean

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

# The decision report's tests (tests/test_report.py) open the page in a real headless browser:
# Debian's Chromium, installed when it is missing (CI runs as root; elsewhere run this with sudo).
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# --durations: the slowest tests, in every run's log (the suite aims at 10 minutes).
unit: deps $(CHROMIUM)
	$(BIN)/pytest -n auto --dist worksteal --cov --cov-report=term --durations=15

# The apps through the real `cdk synth` with every cdk-nag pack as a plugin (a finding fails
# the synth): app.py, the every-option app, the many-accounts app (a hub stack and a member
# stack), the platform engineer's app (network, platform and team stacks); then cfn-lint and
# checkov on the templates (tools/compliance.py prints the counts).
# The max-names app (every name at AWS's maximum) is synthesized here too, for `fidelity`.
compliance: deps $(CHECKOV_VENV)/.installed
	rm -rf cdk.out.app cdk.out.every-option cdk.out.max-names cdk.out.hub cdk.out.platform
	cdk synth --quiet --no-notices --ci --output cdk.out.app > /dev/null
	cdk synth --quiet --no-notices --ci --output cdk.out.every-option \
		--app "$(BIN)/python -m tests.apps.every_option" > /dev/null
	cdk synth --quiet --no-notices --ci --output cdk.out.max-names \
		--app "$(BIN)/python -m tests.apps.max_names" > /dev/null
	cdk synth --quiet --no-notices --ci --output cdk.out.hub \
		--app "$(BIN)/python -m tests.apps.hub" > /dev/null
	cdk synth --quiet --no-notices --ci --output cdk.out.platform \
		--app "$(BIN)/python -m tests.apps.platform" > /dev/null
	$(BIN)/python -m tools.compliance --checkov $(CHECKOV_VENV)/bin/checkov \
		cdk.out.app cdk.out.every-option cdk.out.hub cdk.out.platform

# What moto cannot show, on the assemblies `compliance` synthesized: IAM policies (parliament),
# state machine definitions (asl-validator, statelint), SDK tasks and error names (botocore's
# models), AWS's documented limits, resource and key policies of every publish path
# (tools/fidelity.py prints the counts per check and app; an unadjudicated finding fails).
# Not the platform app: its values cross stacks (Fn::ImportValue) and its network stack holds
# resources (NAT, EIP) the offline resolver does not model; its engine's stack is the
# every-option engine's (custom bus, key, VPC, own topic), which is checked.
fidelity: compliance
	$(BIN)/python -m tools.fidelity cdk.out.app cdk.out.every-option cdk.out.max-names cdk.out.hub

test: lint typecheck unit compliance fidelity integ-synth

# The deployable integration test (docs/integ.md). integ-synth needs no AWS account: it
# synthesizes tests/integ/integ_rightsizing.py with the five cdk-nag packs (a finding fails
# it) and checks that the pinned integ-runner discovers it. integ deploys it to the account and
# region of your AWS credentials (it refuses without them), runs its assertions and destroys
# it: about 1.5 hours (3 at most) and about US$1 (on-demand, us-east-1).
integ-synth: deps
	$(BIN)/python tools/integ.py synth

integ: deps
	$(BIN)/python tools/integ.py run

# The fleet benchmark (tools/bench.py): 1, 200, 1,000 and 3,000 endpoints against every AWS
# limit, and the synth time against one endpoint's. About 10 minutes.
bench: deps
	$(BIN)/python -m tools.bench

# The polling benchmark (tools/poll_bench.py): runs the synthesized Recommend definition for
# IR jobs ending over a spread of times (Default 20-120 min, Advanced 1 h to the timeout) and
# prints how late completion is seen and the state transitions paid, against the fixed
# 5-minute poll before (tools/poll_bench_baseline.json); fails past issue #14's bounds. ~1 min.
poll-bench: deps
	$(BIN)/python -m tools.poll_bench

# The decision-quality benchmark (tools/decision_bench.py, issue #15): 200 seeded synthetic IR
# jobs with known latency curves, decided from IR's scalars, from the measured per-minute
# curves and by an oracle; prints SLO violations and cost against the oracle, and fails unless
# the curve decision has no violation and costs at most 1.05x the oracle. Then 200 seeded
# synthetic AI recommendation jobs (inference components, issue #17): SLO violations and cost
# against an oracle of the component decision; fails on a violation. About 3 s.
decision-bench: deps
	$(BIN)/python -m tools.decision_bench

# Mutation testing of the Lambda runtime with mutmut (tools/mutation.py): a score per module,
# equivalent mutants excluded (tests/mutation/equivalents.toml); fails below the targets.
# Not part of `make test`: it runs the runtime tests once per mutant (18 min on 2 cores for the
# decision, utilization, apply and apply_steps modules).
# `make mutation MODULES="decision apply"` mutates only those modules.
$(BIN)/.mutation-installed: requirements-mutation.txt $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-mutation.txt
	touch $@

mutation: deps $(BIN)/.mutation-installed
	$(BIN)/python tools/mutation.py $(MODULES)

clean:
	rm -rf cdk.out cdk.out.app cdk.out.every-option cdk.out.max-names cdk.out.hub cdk.out.platform cdk.out.integ .pytest_cache .mypy_cache .ruff_cache .coverage build dist *.egg-info
