#!/usr/bin/env bash
# Create .venv with a Python >= 3.10 and install edgebench into it (editable) with EXTRAS.
# Reinstalls only when setup.cfg changed since the last install (stamp file).
# Where the machine has no Python >= 3.10 (a Jetson Nano has 3.6), a standalone CPython comes
# from uv (`uv python install`, python-build-standalone, runs on glibc >= 2.17); the system
# Python is never changed. On a Jetson the `report` extra is added; the `jetson` extra
# (jetson-stats 4.3.2) is installed by `edgebench bootstrap` once the system-wide jtop
# service exists, because its installer refuses a virtualenv before that.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
VENV=.venv
UV_PYTHON_VERSION="${EDGEBENCH_UV_PYTHON:-3.11}"
if [ -f "${EDGEBENCH_SYSROOT:-}/etc/nv_tegra_release" ]; then
  case ",$EXTRAS," in *,report,*) ;; *) EXTRAS="${EXTRAS:+$EXTRAS,}report" ;; esac
fi
STAMP="$VENV/.installed${EXTRAS:+-$EXTRAS}"

pick_python() {
  for py in "${EDGEBENCH_PYTHON:-}" python3.13 python3.12 python3.11 python3.10 python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

find_uv() {
  for uv in "${EDGEBENCH_UV:-}" uv "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do
    [ -n "$uv" ] || continue
    if command -v "$uv" >/dev/null 2>&1; then command -v "$uv"; return 0; fi
  done
  return 1
}

install_uv() {
  # uv's wheels need Python >= 3.8 to pip-install; on 3.6 (JetPack 4) use uv's own installer.
  if python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' 2>/dev/null; then
    echo "no Python >= 3.10 here: installing uv for this user (python3 -m pip install --user uv)" >&2
    python3 -m pip install --quiet --user uv >&2
  else
    echo "no Python >= 3.10 here, and $(python3 --version 2>&1) is too old to pip-install uv:" >&2
    echo "installing uv for this user with its installer (https://astral.sh/uv/install.sh into ~/.local/bin)" >&2
    if command -v curl >/dev/null 2>&1; then
      curl -LsSf https://astral.sh/uv/install.sh | env UV_NO_MODIFY_PATH=1 sh >&2
    else
      wget -qO- https://astral.sh/uv/install.sh | env UV_NO_MODIFY_PATH=1 sh >&2
    fi
  fi
  find_uv
}

uv_python() {
  local uv
  uv=$(find_uv) || uv=$(install_uv) || return 1
  echo "installing a standalone CPython $UV_PYTHON_VERSION with $uv (the system Python stays as it is)" >&2
  "$uv" python install "$UV_PYTHON_VERSION" >&2 || return 1
  "$uv" python find "$UV_PYTHON_VERSION"
}

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(pick_python) && ! PY=$(uv_python); then
    echo "error: edgebench needs Python >= 3.10; this machine has $(python3 --version 2>&1 || echo none), and uv could not install one" >&2
    echo "fix: install uv (https://docs.astral.sh/uv/getting-started/installation/), run 'uv python install 3.11', then EDGEBENCH_PYTHON=\$(uv python find 3.11) make bootstrap" >&2
    exit 2
  fi
  echo "creating $VENV with $("$PY" --version 2>&1)"
  "$PY" -m venv "$VENV"
fi

if [ ! -f "$STAMP" ] || [ setup.cfg -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  spec="."
  [ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"
  touch "$STAMP"
fi
