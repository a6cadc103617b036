"""Start the chat app (app.py) in a child process on a free loopback port, and
stop it: shared by the gradio_client tests and the browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .conftest import CORPUS, ROOT

APP = ROOT / "app.py"
START_TIMEOUT = 180  # seconds: model load and index build on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_APP_", "RAG_LLM_", "RAG_ANSWER_MODE"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    env.update(extra)
    return env


class Server:
    def __init__(self, tmp: Path, corpus: Path = CORPUS, args: tuple[str, ...] = (), **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / f"app-{self.port}.log"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(APP), "--port", str(self.port), "--corpus", str(corpus), "--index", str(tmp / "index"), *args],
            cwd=ROOT, env=_env(**env), stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                urllib.request.urlopen(self.url, timeout=5)
                return
            except urllib.error.HTTPError:  # the server answers (e.g. 401 with auth): it is up
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"app did not start within {START_TIMEOUT} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self._log.close()


@contextlib.contextmanager
def running(tmp: Path, **kwargs) -> Iterator[Server]:
    """An app server that is up for the block and always stopped after it."""
    server = Server(tmp, **kwargs)
    try:
        server.wait()
        yield server
    finally:
        server.stop()
