# One task runner for people, Jenkins and CI. `make help` lists the targets.
SHELL := /bin/bash
# A failing command anywhere in a pipe fails the recipe (`bentoml build | sed` must not pass).
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-$(shell cat requirements/requirements.txt requirements/bootstrap.txt | cksum | cut -d' ' -f1)

DEMO_DATA ?= data/customers.csv
TRAIN_DATA ?= $(DEMO_DATA)
TARGET ?= Churn
# What keeping a customer is worth, for the retention playbook; empty means a constant.
VALUE_FORMULA ?= MonthlyCharges * 12
ID_COLUMN ?= customerID
REPORTS ?= reports
IMAGE ?= churn-service
REGISTRY ?=
GIT_SHA ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
SMOKE_PORT ?= 3100
# Where ports published by `docker run` appear: the Jenkins agent reaches its engine as "docker".
CONTAINER_HOST ?= 127.0.0.1
GROOVY_LINT_VERSION := 15.2.2
DEMO_ROWS ?= 20000
SEED ?= 42
CHURN_PORT ?= 3000
MLFLOW_PORT ?= 5000
# The BentoML model and bento store: in the checkout, so `make clean` can remove it.
BENTOML_HOME ?= $(CURDIR)/bentoml_home
export CHURN_PORT BENTOML_HOME TRAIN_TABLE TRAIN_QUERY

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

# Bytecode is compiled once at install; otherwise, where it is not written (PYTHONDONTWRITEBYTECODE,
# a read-only venv), every process compiles ~3,000 modules from source: 14 s a start on 2 cores.
$(STAMP): requirements/requirements.txt requirements/bootstrap.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.txt
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(PY) requirements/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: install
install: $(STAMP) ## Create .venv with uv from the pinned, hashed requirements

.PHONY: requirements
requirements: install ## Re-compile requirements/*.txt from requirements/*.in
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header requirements.in -o requirements.txt
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header bootstrap.in -o bootstrap.txt
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header serving.in -c requirements.txt -o serving.txt
	cd requirements && ../$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --no-header spark.in -c requirements.txt -o spark.txt

$(DEMO_DATA): | $(STAMP)
	$(PY) -m training synth --rows $(DEMO_ROWS) --seed $(SEED) --out $@

.PHONY: data
data: $(DEMO_DATA) ## Write the synthetic demo customer table

.PHONY: train
train: install ## Train on TRAIN_DATA (a file, or a SQL URL with TRAIN_TABLE or TRAIN_QUERY) and register the winner
	@if [ "$(TRAIN_DATA)" = "$(DEMO_DATA)" ]; then $(MAKE) --no-print-directory data; fi
	CHURN_CUSTOMER_VALUE_FORMULA="$(VALUE_FORMULA)" \
	  $(PY) -m training train --data "$(TRAIN_DATA)" --target $(TARGET) --id-column $(ID_COLUMN) --seed $(SEED) \
	  $${TRAIN_TABLE:+--table "$$TRAIN_TABLE"} $${TRAIN_QUERY:+--query "$$TRAIN_QUERY"}

.PHONY: promote
promote: install ## Move the champion alias to the newest version if it earns more
	$(PY) -m training promote --auto

.PHONY: champion-version
champion-version: install ## Print the version the champion alias points at ("none" if unset)
	@$(PY) -m training champion-version

.PHONY: import-champion
import-champion: install ## Import models:/<name>@champion into the BentoML model store
	$(PY) -m serving import-champion

.PHONY: bento
bento: import-champion ## Import the champion and build the bento (tag in reports/bento-tag)
	@mkdir -p $(REPORTS)
	$(BIN)/bentoml build --output tag | sed -n 's/^__tag__://p' > $(REPORTS)/bento-tag
	@echo "Built bento $$(cat $(REPORTS)/bento-tag)"

.PHONY: serve
serve: install ## Serve the newest imported champion on http://localhost:$(CHURN_PORT)
	$(BIN)/bentoml serve . --port $(CHURN_PORT)

.PHONY: demo
demo: data train promote import-champion history-db ## Synthetic data → train → register → promote → import → serve, API keys required
	@echo
	@echo "Serving the champion on http://localhost:$(CHURN_PORT), with API keys required."
	@key="$$($(PY) -m serving keys create --name demo --scopes predict,explain,score_file,history --rate 1000/second --replace 2>/dev/null)" && \
	  echo "A key named 'demo' was made (python -m serving keys list):" && echo && echo "  $$key" && echo && \
	  echo "The console: open http://localhost:$(CHURN_PORT)/ui and sign in with that key." && \
	  echo "The API: try this once it says it is ready:" && echo && \
	  $(PY) -m serving example-request --api-key "$$key"
	@echo
	@echo "MLflow UI: run 'make mlflow-ui' in another terminal, then open http://localhost:$(MLFLOW_PORT)"
	@echo
	CHURN_AUTH=required $(BIN)/bentoml serve . --port $(CHURN_PORT)

.PHONY: champion
champion: $(DEMO_DATA) ## Make sure a champion is in the BentoML store (trains the demo model if none)
	@$(PY) -m serving example-request >/dev/null 2>&1 || $(MAKE) --no-print-directory train promote import-champion

.PHONY: stream
stream: install ## Score customer records from Kafka into the history (python -m streaming; docs/streaming.md)
	$(PY) -m streaming

# The nightly run of the whole base (docs/batch.md): SCORE_DATA in, SCORE_OUT/date=<today> out,
# recorded under the job id nightly-<today>, so a rerun records nothing twice.
SCORE_DAY ?= $(shell date -u +%F)
.PHONY: score-spark
score-spark: install ## Score SCORE_DATA on Spark (SPARK_MASTER, default local[*]) into SCORE_OUT/date=<today>, recorded
	@test -n "$(SCORE_DATA)" -a -n "$(SCORE_OUT)" || { echo "error: set SCORE_DATA and SCORE_OUT" >&2; exit 2; }
	$(PY) -m scoring spark --data "$(SCORE_DATA)" --out "$(SCORE_OUT)/date=$(SCORE_DAY)" \
	  $(if $(SPARK_MASTER),--master "$(SPARK_MASTER)") --record --job-id "nightly-$(SCORE_DAY)" --overwrite

.PHONY: spark-package
spark-package: install ## The code a Spark cluster runs, as reports/churn-project.zip for spark-submit --py-files (docs/batch.md)
	@mkdir -p $(REPORTS)
	$(PY) -c 'from pathlib import Path; from scoring.spark.session import project_zip; print(project_zip(Path("."), Path("$(REPORTS)/churn-project.zip")))'

.PHONY: loadtest
loadtest: $(DEMO_DATA) ## Locust at 500 req/s for 60 s against HOST=..., or a service it starts; fails below the goals
	@if [ -z "$(HOST)" ]; then $(MAKE) --no-print-directory champion; fi
	HOST="$(HOST)" LOADTEST_REPORTS="$(REPORTS)/loadtest" bash loadtests/run.sh

# PROFILE=production runs the service as production does: a CatBoost champion (trained on the
# demo data into a registry and BentoML store of its own, so the demo's stays), API keys
# required, and the history on PostgreSQL (PRODUCTION_HISTORY_URL). A run that starts its own
# service starts from an empty history database, so that runs compare.
PROFILE ?=
GOAL_USERS ?= 64
PRODUCTION_HISTORY_URL ?= postgresql://postgres@127.0.0.1:5432/churn_loadtest
PRODUCTION_AUTH_DB := sqlite:///$(CURDIR)/keys/production.db
PRODUCTION_STORES := MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlruns/production.db \
  CHURN_ARTIFACT_ROOT=$(CURDIR)/mlruns/production-artifacts BENTOML_HOME=$(CURDIR)/bentoml_home/production \
  CHURN_CANDIDATES=catboost
ifeq ($(PROFILE),production)
PROFILE_ENV := $(PRODUCTION_STORES) CHURN_AUTH=required CHURN_AUTH_DB=$(PRODUCTION_AUTH_DB) \
  CHURN_HISTORY_URL=$(PRODUCTION_HISTORY_URL)
endif

# The speed goal with 64 users (GOAL_USERS). 2,100 offered for a 2,000 gate: a constant-throughput
# user whose answer takes longer than its interval (30 ms) never makes the time up.
.PHONY: loadtest-goal
loadtest-goal: $(DEMO_DATA) ## Locust at 2,100 req/s offered, 64 users; fails under 2,000 req/s or p99 over 50 ms (PROFILE=production)
	@if [ -z "$(HOST)" ]; then $(PROFILE_ENV) $(MAKE) --no-print-directory champion; fi
	@if [ "$(PROFILE)" = production ]; then $(MAKE) --no-print-directory services && $(PY) -m history create-database $(if $(HOST),,--empty) --url "$(PRODUCTION_HISTORY_URL)"; fi
	$(PROFILE_ENV) HOST="$(HOST)" LOADTEST_REPORTS="$(REPORTS)/loadtest-goal$(if $(PROFILE),-$(PROFILE))" \
	  LOADTEST_RATE=2100 LOADTEST_USERS=$(GOAL_USERS) \
	  MIN_RPS=2000 MAX_P99_MS=$(if $(filter-out 64,$(GOAL_USERS)),100,50) bash loadtests/run.sh --users $(GOAL_USERS)

# Every server of the bench serves the production profile's CatBoost champion.
.PHONY: bench
bench: $(DEMO_DATA) services ## Production, bare and `mlflow models serve`: closed loop, req/s at p99 50/100/500 ms, CPU/request (RUNS=3)
	$(PRODUCTION_STORES) $(MAKE) --no-print-directory champion
	$(PY) -m history create-database --empty --url "$(PRODUCTION_HISTORY_URL)"
	$(PRODUCTION_STORES) $(PY) -m loadtests.bench --runs $(or $(RUNS),1) \
	  --auth-db "$(PRODUCTION_AUTH_DB)" --history-url "$(PRODUCTION_HISTORY_URL)" $(BENCH_ARGS)

.PHONY: bench-challenger
bench-challenger: $(DEMO_DATA) services ## CPU/request and p99 with no challenger, a shadow one (share 1.0) and a 5% canary
	$(PRODUCTION_STORES) $(MAKE) --no-print-directory champion
	$(PY) -m history create-database --empty --url "$(PRODUCTION_HISTORY_URL)"
	$(PRODUCTION_STORES) $(PY) -m loadtests.challenger_bench \
	  --auth-db "$(PRODUCTION_AUTH_DB)" --history-url "$(PRODUCTION_HISTORY_URL)" $(BENCH_ARGS)

.PHONY: bench-stream
bench-stream: $(DEMO_DATA) services ## Stream consumer: events/s draining a backlog, CPU/event, publish-to-decision p50/p99 at 2,000 events/s (fails over 500 ms)
	$(PRODUCTION_STORES) $(MAKE) --no-print-directory champion
	$(PRODUCTION_STORES) $(PY) -m loadtests.stream_bench --data $(DEMO_DATA) $(BENCH_ARGS)

.PHONY: bench-spark
bench-spark: $(DEMO_DATA) ## Spark local[1] and local[2] against python -m scoring on ROWS (10,000,000) Parquet rows: rows/s, peak memory
	$(PRODUCTION_STORES) $(MAKE) --no-print-directory champion
	$(PRODUCTION_STORES) $(PY) -m loadtests.spark_bench --data $(DEMO_DATA) --rows $(or $(ROWS),10000000) $(BENCH_ARGS)

.PHONY: bench-train
bench-train: install ## Train on ROWS (1,000,000) synthetic customers, default candidates: time, peak memory, test metrics (fails over 10 min or 4 GiB up to 1M rows)
	$(PY) -m loadtests.train_bench --rows $(or $(ROWS),1000000) $(BENCH_ARGS)

.PHONY: bench-splits
bench-splits: install ## Fit both candidates on SEEDS (20) splits of TRAIN_DATA: how far test metrics and the winner move with the split
	@if [ "$(TRAIN_DATA)" = "$(DEMO_DATA)" ]; then $(MAKE) --no-print-directory data; fi
	$(PY) -m loadtests.split_spread --data "$(TRAIN_DATA)" --target $(TARGET) --id-column $(ID_COLUMN) --seeds $(or $(SEEDS),20)

.PHONY: bench-slow-bodies
bench-slow-bodies: $(DEMO_DATA) ## /predict at 200 req/s alone, then beside 500 connections that stall mid-body (fails at p99 over 100 ms)
	$(PRODUCTION_STORES) $(MAKE) --no-print-directory champion
	$(PRODUCTION_STORES) $(PY) -m loadtests.slow_bodies --data $(DEMO_DATA) $(BENCH_ARGS)

.PHONY: chaos
chaos: $(DEMO_DATA) services ## Faults under load (stores refused or hung, registry down in a promotion, a worker killed): a table, fails on a broken promise
	$(PY) -m chaos --data $(DEMO_DATA) --out $(REPORTS)/chaos.md $(CHAOS_ARGS)

.PHONY: bench-auth
bench-auth: $(DEMO_DATA) ## CPU per request of the key check and rate limit, in-process (STORAGE=redis://... to count in Redis)
	$(PY) -m loadtests.auth_cost --storage "$(or $(STORAGE),memory://)"

.PHONY: bench-history
bench-history: champion services ## History on PostgreSQL: writer rows/s, then GET /customers/{id}/history p99 over 10M rows (fails over 20 ms)
	$(PY) -m loadtests.history_bench $(if $(ROWS),--rows $(ROWS))

.PHONY: bench-drift
bench-drift: champion services ## One drift refresh over 24 h of 2,000 req/s on PostgreSQL (fails over 10 s); the writer's counting cost per row
	$(PY) -m loadtests.drift_bench

.PHONY: bench-console
bench-console: champion ## Server time of every console page with 10,000 scores for one customer (fails over 200 ms)
	$(PY) -m loadtests.console_bench $(if $(HISTORY_URL),--history-url $(HISTORY_URL))

.PHONY: bench-swap
bench-swap: install ## Follow mode swapping the production profile's FROM=1 -> TO=2 -> FROM under 1,000 req/s: failures, p99, swap time, memory
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "give FROM=<version> TO=<version>: two registered versions"; exit 1; }
	$(PRODUCTION_STORES) $(PY) -m loadtests.swap_bench --from-version $(FROM) --to $(TO)

.PHONY: history-db
history-db: install ## Create or update the prediction-history schema at CHURN_HISTORY_URL (default: an SQLite file)
	$(PY) -m history migrate

.PHONY: mlflow-ui
mlflow-ui: install ## Run the MLflow UI on the embedded SQLite store (http://localhost:$(MLFLOW_PORT))
	bash mlflow/serve-local.sh $(MLFLOW_PORT)

.PHONY: lint
lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy churn scoring registry cli training serving history monitoring console service.py loadtests webhook streaming chaos

.PHONY: lint-jenkinsfile
lint-jenkinsfile: ## npm-groovy-lint on the Jenkinsfile (pinned, installed on first use); fails on errors
	@test -x .tools/node_modules/.bin/npm-groovy-lint || npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix .tools npm-groovy-lint@$(GROOVY_LINT_VERSION)
	.tools/node_modules/.bin/npm-groovy-lint --failon error --noserver --output txt Jenkinsfile

# Debian's Prometheus and Alertmanager, unpacked into .tools/ (no root services, no daemon).
PROMETHEUS_ROOT := .tools/prometheus
ALERTMANAGER_ROOT := .tools/alertmanager
PROMTOOL := $(PROMETHEUS_ROOT)/usr/bin/promtool
AMTOOL := $(ALERTMANAGER_ROOT)/usr/bin/amtool
MONITORING_PORT_PROMETHEUS ?= 9090
MONITORING_PORT_ALERTMANAGER ?= 9093

$(PROMTOOL):
	@bash monitoring/unpack-debian.sh prometheus $(PROMETHEUS_ROOT)

$(AMTOOL):
	@bash monitoring/unpack-debian.sh prometheus-alertmanager $(ALERTMANAGER_ROOT)

.PHONY: monitoring-tools
monitoring-tools: $(PROMTOOL) $(AMTOOL) ## Unpack Debian's Prometheus and Alertmanager into .tools/ (apt-get download + dpkg -x)

.PHONY: alerts-test
alerts-test: install monitoring-tools ## promtool: check and unit-test the alert rules and every dashboard query; amtool: check the routing
	$(PROMTOOL) check rules monitoring/alerts.yml
	cd monitoring && ../$(PROMTOOL) test rules alerts_test.yml
	@mkdir -p $(REPORTS)/monitoring
	$(PY) -m monitoring.dashboard --out $(REPORTS)/monitoring/churn.json --rules $(REPORTS)/monitoring/dashboard-queries.yml
	cmp $(REPORTS)/monitoring/churn.json monitoring/grafana/churn.json || { echo "monitoring/grafana/churn.json is stale: run python -m monitoring.dashboard"; exit 1; }
	$(PROMTOOL) check rules $(REPORTS)/monitoring/dashboard-queries.yml
	CHURN_ALERT_SLACK_WEBHOOK_URL=https://slack.invalid/hook CHURN_ALERT_DISCORD_WEBHOOK_URL=https://discord.invalid/hook \
	  CHURN_ALERT_EMAIL_TO=retention@example.com CHURN_ALERT_SMTP_PASSWORD=secret \
	  CHURN_ALERT_RETRAIN_URL=http://127.0.0.1:8080/alerts CHURN_ALERT_RETRAIN_TOKEN=token \
	  $(PY) -m monitoring.alertmanager_config --out $(REPORTS)/monitoring/alertmanager.yml
	$(AMTOOL) check-config $(REPORTS)/monitoring/alertmanager.yml

.PHONY: monitoring
monitoring: install monitoring-tools ## Prometheus and Alertmanager against the local service (CHURN_PORT), with the alert rules
	bash monitoring/run-local.sh $(CHURN_PORT) $(MONITORING_PORT_PROMETHEUS) $(MONITORING_PORT_ALERTMANAGER)

.PHONY: browser-tools
browser-tools: ## Debian's Chromium for the console's browser tests (Playwright drives it; no browser download)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@chromium --version

# Each script starts its service only if nothing answers at its address; CHURN_TEST_POSTGRES,
# CHURN_TEST_REDIS and CHURN_TEST_KAFKA point the tests (and these scripts) at servers of your own.
TEST_SERVICES ?= postgres redis kafka

.PHONY: services
services: ## Start PostgreSQL, Redis and Apache Kafka (KRaft) on 127.0.0.1 for the tests, unless they answer already; logs in reports/services
	@for service in $(TEST_SERVICES); do bash services/$$service.sh start; done

.PHONY: services-stop
services-stop: ## Stop what `make services` started, and nothing else
	@for service in kafka redis postgres; do bash services/$$service.sh stop; done

.PHONY: pytest
pytest: install services browser-tools monitoring-tools ## The unit and integration tests, with a JUnit report in reports/junit.xml
	@mkdir -p $(REPORTS)
	$(BIN)/pytest --junitxml=$(REPORTS)/junit.xml $(PYTEST_ARGS)

.PHONY: test
test: install services ## Lint (ruff, mypy, Jenkinsfile), alert rules, then the unit and integration tests
	$(MAKE) --no-print-directory lint lint-jenkinsfile alerts-test
	$(MAKE) --no-print-directory pytest

# --- Container stages: they need a Docker engine, so they run in Jenkins, not on a laptop. ---
BENTO_TAG = $(shell cat $(REPORTS)/bento-tag 2>/dev/null)
IMAGE_REF = $(if $(REGISTRY),$(REGISTRY)/,)$(IMAGE)
MODEL_LABELS = $(shell $(PY) -m serving model-labels 2>/dev/null)

.PHONY: containerize
containerize: ## Build the image of the bento: tags bento version and git sha, model labels
	@test -n "$(BENTO_TAG)" || { echo "run 'make bento' first"; exit 1; }
	$(BIN)/bentoml containerize $(BENTO_TAG) \
	  -t $(IMAGE_REF):$(lastword $(subst :, ,$(BENTO_TAG))) -t $(IMAGE_REF):$(GIT_SHA) \
	  $(foreach label,$(MODEL_LABELS),--opt label=$(label))

.PHONY: container-smoke
container-smoke: ## Run the image, wait for /readyz, check one /predict, stop it
	CONTAINER_HOST=$(CONTAINER_HOST) bash deploy/smoke-test.sh $(IMAGE_REF):$(GIT_SHA) $(SMOKE_PORT)

.PHONY: push
push: ## Push both image tags to REGISTRY
	@test -n "$(REGISTRY)" || { echo "set REGISTRY"; exit 1; }
	docker push $(IMAGE_REF):$(lastword $(subst :, ,$(BENTO_TAG)))
	docker push $(IMAGE_REF):$(GIT_SHA)

.PHONY: deploy-compose
deploy-compose: ## Deploy the image with Docker Compose (DOCKER_HOST picks the host; STREAM=1 adds the stream consumer)
	IMAGE=$(IMAGE_REF):$(GIT_SHA) docker compose -f deploy/compose/docker-compose.yml $(if $(STREAM),--profile stream) up -d --wait

.PHONY: deploy-kubernetes
deploy-kubernetes: ## Roll the built image out to Kubernetes with the manifests in deploy/kubernetes (STREAM=1: the consumer too)
	kubectl apply -f deploy/kubernetes/service.yaml
	sed 's|image: churn-service:latest|image: $(IMAGE_REF):$(GIT_SHA)|' deploy/kubernetes/deployment.yaml | kubectl apply -f -
	kubectl rollout status deployment/churn-service --timeout=300s
	$(if $(STREAM),sed 's|image: churn-service:latest|image: $(IMAGE_REF):$(GIT_SHA)|' deploy/kubernetes/stream.yaml | kubectl apply -f -)

.PHONY: deployed-model
deployed-model: ## Write reports/deployed-model.json: which model version this build ships
	@mkdir -p $(REPORTS)
	$(PY) -m serving model-labels --json --image $(IMAGE_REF):$(GIT_SHA) > $(REPORTS)/deployed-model.json
	@cat $(REPORTS)/deployed-model.json

.PHONY: clean
clean: services-stop ## Stop the test services; remove everything the targets create but .venv: MLflow state, API keys, history, BentoML store, data, reports
	rm -rf mlruns keys history-db data reports .tools bentoml_home catboost_info .mypy_cache .ruff_cache .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## Also remove .venv
	rm -rf $(VENV)
