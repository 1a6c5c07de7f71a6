# Thin wrappers over the `edgebench` CLI in .venv. ARGS passes options through, e.g.
#   make bootstrap ARGS='--llama-source pypi'
EB := .venv/bin/edgebench
ARGS ?=
RUN_ARGS ?=
BENCH_ARGS ?=
REPORT_ARGS ?=

.PHONY: venv venv-dev bootstrap doctor run bench report serve test clean nano-check

# .venv with edgebench, its twin extra and, where its wheels install, its report extra (so the
# `edgebench report` line a run ends with works as printed); on a Nano, held to the proven pins.
venv:
	@tools/ensure-venv.sh

venv-dev:
	@tools/ensure-venv.sh dev

bootstrap: venv
	$(EB) bootstrap $(ARGS)

doctor: venv
	$(EB) doctor $(ARGS)

# Bootstrap (a no-op when done), then the default workload: 50 queries, ~5 min on 2 cores with the twin.
run: bootstrap
	$(EB) run $(RUN_ARGS)

# The report extra too: bench times rendering a 500-query run.
bench: bootstrap
	@tools/ensure-venv.sh report
	$(EB) bench $(BENCH_ARGS)

# Renders every run and experiment under reports/ and reports/index.html (needs the report extra:
# polars, plotnine). On a board whose CPU cannot run them, copy reports/ to a laptop and run it there.
report:
	@tools/ensure-venv.sh report
	$(EB) report $(REPORT_ARGS)

# Browse reports/ read-only from a laptop: binds 127.0.0.1 and prints the ssh -L line to use.
serve: venv
	$(EB) serve $(ARGS)

# The Nano's build without a board: CUDA 11.8 for sm_53, aarch64 under qemu, the Python stack there.
# As root it installs its Debian packages first (orchestrator/data/scripts/nano-check-deps.sh); writes build/nano-check/report.json.
nano-check: venv
	$(EB) nano-check $(ARGS)

test: venv-dev
	.venv/bin/python -m pytest $(ARGS)

# Keeps build/toolchain (GCC 8.5 on a Nano took hours); `edgebench bootstrap --redo gcc` rebuilds it.
clean:
	rm -rf build/llama.cpp build/models build/logs build/ledger.json build/.llama.cpp.partial build/cuda-probe \
		build/nano-check
