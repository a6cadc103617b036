"""benchmarks/langchain_ref.py: without LangChain it says how to install it.

The benchmark itself is run by hand (README, Against LangChain): it needs the
`bench` extra and minutes of a machine, and the suite never times anything.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_module():
    spec = importlib.util.spec_from_file_location("langchain_ref", ROOT / "benchmarks" / "langchain_ref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_langchain_gets_the_install_command(monkeypatch, capsys) -> None:
    module = load_module()
    monkeypatch.setattr(module, "_absent", lambda name: name.startswith("langchain"))
    assert module.main(["--quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("langchain_ref: langchain_community, langchain_text_splitters missing.")
    assert "pip install -e '.[bench]'" in err


def test_the_bench_extra_lists_what_the_benchmark_imports() -> None:
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    names = {line.split(">")[0].split("=")[0].strip().replace("-", "_") for line in extra}
    module = load_module()
    assert {m for m in module.NEEDED if m.startswith("langchain")} <= names
    assert "bench" not in str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
