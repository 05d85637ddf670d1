# soilnet: `make demo` runs the whole flow on a generated region; `make test` runs lint and tests.
# Both install what is missing first (a venv in .venv with the exact versions of constraints.txt).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.soilnet-installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The map viewer's JavaScript (Leaflet) from the npm registry, at package-lock.json's version; soilnet serve
# serves it from there (never from a CDN).
LEAFLET := soilnet/serve/web/node_modules/leaflet/dist/leaflet.js
$(LEAFLET): soilnet/serve/web/package.json soilnet/serve/web/package-lock.json
	npm ci --prefix soilnet/serve/web --no-audit --no-fund
	touch $(LEAFLET)

install: $(STAMP) $(LEAFLET)

demo: install
	$(VENV)/bin/soilnet demo --config jobs/configs/demo.yaml

lint: install
	$(VENV)/bin/ruff check soilnet jobs tests benchmarks
	$(VENV)/bin/ruff format --check soilnet jobs tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix soilnet jobs tests benchmarks
	$(VENV)/bin/ruff format soilnet jobs tests benchmarks

test: install lint
	$(PY) -m pytest

bench: install
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) -m pip install --quiet --no-deps -c constraints.txt torchgeo
	for b in benchmarks/*.py; do $(PY) $$b --quick || exit 1; done

clean:
	rm -rf demo runs .pytest_cache .ruff_cache
