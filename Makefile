# Thin wrappers over the `edgebench` CLI in .venv. ARGS passes options through, e.g.
#   make bootstrap ARGS='--llama-source pypi'
EB := .venv/bin/edgebench
ARGS ?=

.PHONY: venv venv-dev bootstrap doctor test bench clean

venv:
	@tools/ensure-venv.sh

venv-dev:
	@tools/ensure-venv.sh dev

bootstrap: venv
	$(EB) bootstrap $(ARGS)

doctor: venv
	$(EB) doctor $(ARGS)

test: venv-dev
	.venv/bin/python -m pytest $(ARGS)

# Keeps build/toolchain (GCC 8.5 on a Nano took hours); `edgebench bootstrap --force gcc` rebuilds it.
clean:
	rm -rf build/llama.cpp build/models build/logs build/ledger.json build/.llama.cpp.partial build/cuda-probe
