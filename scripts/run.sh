#!/usr/bin/env bash
# Set up, build or refresh the index, then run `rag` with the given arguments.
# With none, it answers questions at a prompt (`rag ask`), keeping the conversation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rag index
if [ $# -eq 0 ]; then
    set -- ask
fi
exec .venv/bin/rag "$@"
