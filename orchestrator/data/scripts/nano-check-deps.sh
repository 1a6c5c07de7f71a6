#!/usr/bin/env bash
# Install what `edgebench nano-check` needs on a Debian bookworm x86-64 host, as root:
#   - CUDA 11.8 (Debian's nvidia-cuda-toolkit, in non-free): the newest CUDA that still targets sm_53;
#   - g++-11: the newest host compiler CUDA 11.8 accepts;
#   - g++-aarch64-linux-gnu and qemu-user-static: the Nano's CPU, cross-built and emulated.
# The arm64 Python and the aarch64 wheels are not installed system-wide: nano-check fetches them into
# build/nano-check/ with a private apt state (the host's dpkg architectures stay untouched).
# Safe to rerun: it only installs what is missing.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "nano-check-deps.sh installs Debian packages: run it as root (sudo bash $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
SOURCES=/etc/apt/sources.list.d/edgebench-nano-check.sources
if [ ! -f "$SOURCES" ]; then
  # The same mirror and suites as the host's main sources, with the components CUDA lives in.
  . /etc/os-release
  cat >"$SOURCES" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${VERSION_CODENAME} ${VERSION_CODENAME}-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  updated=0
fi
want=(nvidia-cuda-toolkit g++-11 g++-aarch64-linux-gnu qemu-user-static)
need=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ] || [ "${updated:-1}" = 0 ]; then
  apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
echo "nano-check deps installed: ${want[*]}"
