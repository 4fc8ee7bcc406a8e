# The README's Quickstart: `make demo` and `make test`. Everything installs into .venv.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST := TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m pytest
INSTALLED := $(VENV)/.installed
BACKENDS_INSTALLED := $(VENV)/.backends-installed

.PHONY: install demo test test-slow test-backends lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(INSTALLED): setup.py $(PY)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(INSTALLED)

demo: install
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m keras_efficientnets info

test: install
	$(PYTEST) -q

test-slow: install
	$(PYTEST) -q -m slow

$(BACKENDS_INSTALLED): $(INSTALLED)
	$(PY) -m pip install -q -e ".[test,jax,torch]"
	touch $@

# The backends subset of the suite, on JAX and on PyTorch.
test-backends: $(BACKENDS_INSTALLED)
	KERAS_BACKEND=jax $(PYTEST) -q -m backends
	KERAS_BACKEND=torch $(PYTEST) -q -m backends

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
