#!/usr/bin/env bash
# Set up, build or refresh the index, then start the chat app on
# http://127.0.0.1:7860 (app.py's options pass through: --port 8080 ...).
# With a rag command first (ask, search, index, articles, eval), run that instead:
#   bash scripts/run.sh ask "Why did Vucic halt arms deliveries to Israel?"
# With `bench`, run the benchmark (benchmarks/bench.py; its options pass through):
#   bash scripts/run.sh bench --scale
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh product  # what the product needs: no test tools, no compiler
case "${1:-}" in
    bench)
        shift
        exec .venv/bin/python benchmarks/bench.py "$@" ;;
    ask|search|index|articles|eval)
        .venv/bin/rag index
        exec .venv/bin/rag "$@" ;;
    *)
        exec .venv/bin/python app.py "$@" ;;
esac
