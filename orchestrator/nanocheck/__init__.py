"""`edgebench nano-check`: the Jetson Nano's build proven on an x86 host, without a board.

CUDA 11.8 compiles llama.cpp for sm_53 with the Nano patch (cuda.py), a cross compiler and
qemu run `main` on the Cortex-A57's instruction set (aarch64.py), and an arm64 CPython under
qemu imports the wheels a board would install (pyimports.py), whose versions pin every install
on a Nano (constraints.py); report.py runs them and writes
build/nano-check/report.json."""
