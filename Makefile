# Thin by design: each target is a line or two; the logic lives in govops/ and scripts/.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
GOVOPS  := $(BIN)/govops
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv system-deps lab lab-swap lab-down test molecule lab-proof unit lint render-check estate-check bench bench-backup bench-all clean help
.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/pip install --quiet -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c "import govops, ansible, pulumi, fabric, prometheus_client, molecule"
	touch $@

venv: $(VENV)/.installed ## Create .venv with govops and every tool installed

system-deps: ## Install the Debian packages the lab and tests need (root; idempotent)
	bash scripts/install-system-deps.sh

lab: system-deps venv ## The whole rehearsal: lab up, converge, monitor, cut over, summary (PROVINCES=all: the nation)
	$(GOVOPS) lab rehearse $(if $(PROVINCES),--provinces $(PROVINCES))

# The nation's 274 hosts need more than 24 GiB at the cutover's peak: the rehearsal refuses to
# start them without enough memory and swap (govops/lab/memory.py).
LAB_SWAP ?= 8G
lab-swap: ## Compressed swap in memory for the nation's lab (zram, LAB_SWAP=8G; LAB_SWAP=off removes it)
	bash scripts/lab-swap.sh $(LAB_SWAP)

lab-down: venv ## Remove the lab's containers and network
	$(GOVOPS) lab down

render-check: venv ## Fail if rendered files drift from the estates
	$(GOVOPS) render --env production --check
	$(GOVOPS) render --env lab --check

# make test runs the same through tests/unit/test_estate_check.py (every committed environment).
estate-check: venv ## Fail if Pulumi, inventory, prober and runbooks disagree on the estate
	$(GOVOPS) estate check --env production
	$(GOVOPS) estate check --env lab

lint: venv ## ruff, mypy, import contracts, yamllint, ansible-lint
	$(BIN)/ruff check govops infra exporters tests bench
	$(BIN)/ruff format --check govops infra exporters tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/yamllint -s .
	scripts/ansible-lint.sh

unit: venv ## Unit tests only (fast, no containers)
	$(BIN)/pytest -q tests/unit

# CI runs everything but the lab proofs on both cores (every role's Molecule scenario among them:
# 16; the longest first, tests/conftest.py; ~16 min in all), then the lab proofs the issue asks
# of CI on one converged default lab, alone on the machine: converge twice and in check mode,
# monitoring and alerting, a cutover with a failing province (~30 min). ~48 min in all here
# (docs/converge-speed.md). The DNS switch, the two other rehearsal proofs, PITR and failover
# stay in `make lab-proof` (all 16, ~60 min).
TEST_JOBS ?= 2
CI_LAB_PROOFS := tests/integration/test_converge_lab.py tests/integration/test_monitoring_lab.py \
	tests/integration/test_runbook_lab.py
test: system-deps venv lint render-check ## The full suite as CI runs it
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder --durations=20 -m "not lab_proof" tests
	$(BIN)/pytest -q -m lab_proof --durations=20 $(CI_LAB_PROOFS)

molecule: system-deps venv ## Every role's Molecule scenario only
	$(BIN)/pytest -q tests/integration/test_molecule.py

lab-proof: system-deps venv ## Converge, monitoring and cutover proofs on a throwaway default lab (~60 min)
	$(BIN)/pytest -q -m lab_proof tests/integration

bench: system-deps venv ## Benchmarks; figures are printed and reported in issue notes
	$(BIN)/python bench/render.py
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/runbook.py
	$(BIN)/python bench/lint.py
	$(BIN)/python bench/prober.py
	$(BIN)/python bench/inherit.py
	$(BIN)/python bench/lab.py
	$(BIN)/python bench/converge.py

bench-backup: system-deps venv ## RPO/RTO of backups, failover and restore on the running lab (`make lab` first; ~30 min)
	$(BIN)/python bench/backup.py --env lab

bench-all: system-deps venv ## The long benchmarks too: all 34 provinces in the lab (~1 h)
	$(BIN)/python bench/lab.py --scope all
	$(BIN)/python bench/converge.py --provinces all

clean: ## Remove the venv and caches (the lab cache in ~/.cache/govops stays)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
