#!/usr/bin/env bash
# Set up, then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test  # the product, the test tools and the llama.cpp server for the LLM tests
# The browser tests (tests/test_browser.py) drive the Debian chromium with its
# own chromedriver; nothing downloads a browser of its own.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: the browser tests need Chromium: install the Debian packages chromium and chromium-driver (sudo apt-get install chromium chromium-driver)" >&2
        exit 1
    fi
    echo "test: installing chromium and chromium-driver (about 1 minute)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
