# One task runner for people, Jenkins and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-$(shell cat requirements/requirements.txt requirements/bootstrap.txt | cksum | cut -d' ' -f1)

DEMO_DATA ?= data/customers.csv
DEMO_ROWS ?= 20000
SEED ?= 42
CHURN_PORT ?= 3000
MLFLOW_PORT ?= 5000
export CHURN_PORT

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements/requirements.txt requirements/bootstrap.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.txt
	$(BIN)/uv pip sync --quiet --python $(PY) requirements/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: install
install: $(STAMP) ## Create .venv with uv from the pinned, hashed requirements

.PHONY: requirements
requirements: install ## Re-compile requirements/*.txt from requirements/*.in
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header requirements.in -o requirements.txt
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header bootstrap.in -o bootstrap.txt
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header serving.in -c requirements.txt -o serving.txt

$(DEMO_DATA): | $(STAMP)
	$(PY) -m training synth --rows $(DEMO_ROWS) --seed $(SEED) --out $@

.PHONY: data
data: $(DEMO_DATA) ## Write the synthetic demo customer table

.PHONY: train
train: $(DEMO_DATA) ## Train on the demo table and register the winner in MLflow
	$(PY) -m training train --data $(DEMO_DATA) --target Churn --id-column customerID --seed $(SEED)

.PHONY: promote
promote: install ## Move the champion alias to the newest version if it earns more
	$(PY) -m training promote --auto

.PHONY: import-champion
import-champion: install ## Import models:/<name>@champion into the BentoML model store
	$(PY) -m serving import-champion

.PHONY: bento
bento: import-champion ## Import the champion and build the bento
	$(BIN)/bentoml build --output tag

.PHONY: serve
serve: install ## Serve the newest imported champion on http://localhost:$(CHURN_PORT)
	$(BIN)/bentoml serve . --port $(CHURN_PORT)

.PHONY: demo
demo: data train promote import-champion ## Synthetic data → train → register → promote → import → serve
	@echo
	@echo "Serving the champion on http://localhost:$(CHURN_PORT). Try it once it says it is ready:"
	@echo
	@$(PY) -m serving example-request
	@echo
	@echo "MLflow UI: run 'make mlflow-ui' in another terminal, then open http://localhost:$(MLFLOW_PORT)"
	@echo
	$(BIN)/bentoml serve . --port $(CHURN_PORT)

.PHONY: champion
champion: $(DEMO_DATA) ## Make sure a champion is in the BentoML store (trains the demo model if none)
	@$(PY) -m serving example-request >/dev/null 2>&1 || $(MAKE) --no-print-directory train promote import-champion

.PHONY: loadtest
loadtest: $(DEMO_DATA) ## Locust at 500 req/s for 60 s against HOST=..., or a service it starts; fails below the goals
	@if [ -z "$(HOST)" ]; then $(MAKE) --no-print-directory champion; fi
	HOST="$(HOST)" bash loadtests/run.sh

.PHONY: mlflow-ui
mlflow-ui: install ## Run the MLflow UI on the embedded SQLite store (http://localhost:$(MLFLOW_PORT))
	bash mlflow/serve-local.sh $(MLFLOW_PORT)

.PHONY: lint
lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy training serving service.py loadtests

.PHONY: test
test: install ## Lint, then the unit and integration tests
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove local MLflow state, demo data and reports (keeps .venv)
	rm -rf mlruns data reports
