"""A shipped weight file and its manifest, read and checked in one place.

The learned answer stage (rag/answerability.py), the reading model
(rag/reader.py) and the answer's probability (rag/calibration.py) ship their
weights as JSON beside a manifest that records the weights' sha256 (with the
data hashes, features and metrics of the run that made them). A file that is
missing, not JSON, of another format, or edited since its manifest was
written is refused with one line that says how to make it again. Their
training commands share `run_unsalted`, which makes their runs repeatable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_path(weights: Path) -> Path:
    return weights.with_name(weights.stem + ".manifest.json")


def read_checked(path: Path, fmt: str, what: str, retrain: str, error: type[Exception]) -> tuple[dict, dict]:
    """(weights, manifest) of `path`, both JSON objects, the weights of format
    `fmt` and matching the manifest's sha256; else `error` naming `what`
    (e.g. "answer model") and `retrain` (how to make the file again)."""
    mpath = manifest_path(path)
    for p in (path, mpath):
        if not p.is_file():
            raise error(f"{what} file {p} does not exist: {retrain}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{what} {path} or its manifest is not valid JSON ({e.__class__.__name__}): {retrain}") from e
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{path} is not a {fmt} weight file: {retrain}")
    if not isinstance(manifest, dict) or manifest.get("weights_sha256") != sha256(path):
        raise error(f"{path} does not match the sha256 in {mpath.name} (edited or mixed up): {retrain}")
    return data, manifest


def run_unsalted(module: str, argv: Sequence[str] | None) -> None:
    """Start a training command (`python -m MODULE`) again with
    PYTHONHASHSEED=0 unless it already runs so, and offline. Python salts
    string hashes per process, so sets of words iterate in another order each
    run, and scores summed over them differ in the last bit: enough to change
    a weight file that must come out the same from the same data."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", module, *(sys.argv[1:] if argv is None else argv)])


def share_in_0_1(text: str) -> float:
    """An argparse type: a number in [0, 1), refused in one line before any work."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), not {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), not {value}")
    return value


def add_false_abstention(parser: argparse.ArgumentParser, default: float) -> None:
    """The trainers' --false-abstention: the held-out false-abstention rate
    their threshold is chosen for, refused outside [0, 1) before any work."""
    parser.add_argument("--false-abstention", type=share_in_0_1, default=default, metavar="RATE",
                        help=f"held-out false-abstention rate the threshold is chosen for (default {default})")
