#!/usr/bin/env bash
# Create .venv with a Python >= 3.10 and install edgebench into it (editable) with EXTRAS.
# Reinstalls only when setup.cfg changed since the last install (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
VENV=.venv
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

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(pick_python); then
    echo "error: edgebench needs Python >= 3.10; this machine has $(python3 --version 2>&1 || echo none)" >&2
    echo "fix: install one (e.g. 'pip install --user uv && uv python install 3.11'), then EDGEBENCH_PYTHON=/path/to/python3.11 make bootstrap" >&2
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
