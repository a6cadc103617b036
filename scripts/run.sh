#!/usr/bin/env bash
# Set up, build or refresh the index, then run `rag` with the given arguments.
# With none, it asks questions interactively (`rag search` reads from the prompt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rag index
if [ $# -eq 0 ]; then
    set -- search
fi
exec .venv/bin/rag "$@"
