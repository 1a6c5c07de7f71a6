#!/usr/bin/env bash
# Create .venv with a Python >= 3.10 and install edgebench into it (editable) with EXTRAS.
# Reinstalls only when setup.cfg changed since the last install (stamp file).
# Where the machine has no Python >= 3.10 (a Jetson Nano has 3.6), a standalone CPython comes
# from uv (`uv python install`, python-build-standalone, runs on glibc >= 2.17); the system
# Python is never changed. The `twin` extra always comes along (bootstrap synthesizes the
# timing twin when Hugging Face does not answer), and so does `report` where its wheels install,
# so that the `edgebench report` a run prints works; only when `report` is asked for by name
# (make report) is its failure an error. On a Jetson Nano every install is held to the versions
# `make nano-check` proved on the Cortex-A57 (orchestrator/data/constraints/jetson-nano.txt).
# The `jetson` extra (jetson-stats 4.3.2) is installed by `edgebench bootstrap` once the
# system-wide jtop service exists, because its installer refuses a virtualenv before that.
set -euo pipefail
cd "$(dirname "$0")/.."
ASKED="${1:-}"
EXTRAS="$ASKED"
VENV=.venv
UV_PYTHON_VERSION="${EDGEBENCH_UV_PYTHON:-3.11}"
NO_REPORT="$VENV/.report-does-not-install"
CONSTRAINTS=orchestrator/data/constraints/jetson-nano.txt
PIP_CONSTRAINTS=()
MODEL_FILE="${EDGEBENCH_SYSROOT:-}/proc/device-tree/model"
if [ -r "$MODEL_FILE" ] && tr -d '\0' < "$MODEL_FILE" | grep -q "Jetson Nano"; then
  PIP_CONSTRAINTS=(-c "$CONSTRAINTS")
fi

want() {  # add an extra unless asked already (dev brings them all)
  case ",$EXTRAS," in *,"$1",*|*,dev,*) ;; *) EXTRAS="${EXTRAS:+$EXTRAS,}$1" ;; esac
}
want twin
if [ ! -f "$NO_REPORT" ] || [ setup.cfg -nt "$NO_REPORT" ]; then want report; fi
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

install() {
  echo "installing edgebench${1:+[$1]} into $VENV"  # deploy/ (Ansible) reads this line as a change
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check ${PIP_CONSTRAINTS[@]+"${PIP_CONSTRAINTS[@]}"} \
    -e ".${1:+[$1]}"
}

if [ ! -f "$STAMP" ] || [ setup.cfg -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  if install "$EXTRAS"; then
    touch "$STAMP"
  else
    case ",$ASKED," in *,report,*|*,dev,*) exit 1 ;; esac
    case ",$EXTRAS," in *,report,*) ;; *) exit 1 ;; esac
    without=$(printf '%s' ",$EXTRAS," | sed 's/,report,/,/; s/^,//; s/,$//')
    echo "warning: the report extra (polars, plotnine) does not install here; runs do not need it." >&2
    echo "  Render reports on another machine (copy reports/<run_id>/ there), or see the pip error above." >&2
    install "$without"
    touch "$NO_REPORT" "$VENV/.installed${without:+-$without}"
  fi
fi
