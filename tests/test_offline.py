"""The model and the tokenizer come from installed packages, never from a hub.

The CLI runs in a child process whose sockets refuse every connection beyond
loopback, with empty Hugging Face and tiktoken caches: if anything tried to
download, the command would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import CORPUS, DAMAGED_ID

BLOCK_NETWORK = textwrap.dedent(
    """
    import socket
    _connect = socket.socket.connect
    def _guard(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            raise OSError(f"network blocked by test: {address}")
        return _connect(self, address)
    socket.socket.connect = _guard
    socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError("network blocked by test"))
    """
)


def test_index_and_search_work_with_the_network_blocked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "TIKTOKEN_", "SENTENCE_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]),
        HF_HOME=str(tmp_path / "hf"),  # empty: no cached model to fall back on
        TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken"),  # empty: no cached encoding either
        XDG_CACHE_HOME=str(tmp_path / "cache"),  # empty: the ONNX model is exported here, offline
    )
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "search", "high-level dialogue between Türkiye and Serbia",
         "-k", "1", "--corpus", str(CORPUS), "--index", str(tmp_path / "index"), "--quiet", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'"article_id": "{DAMAGED_ID}"' in result.stdout
    assert "high-level dialogue" in result.stdout
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.safetensors"))
    assert list((tmp_path / "cache" / "rag" / "onnx").glob("all-MiniLM-L6-v2@*/model-opset*.onnx"))


def test_the_guard_really_blocks(tmp_path: Path) -> None:
    """Without this, the test above could pass with the network open."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)
    code = "import socket; socket.socket().connect(('192.0.2.1', 443))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert result.returncode != 0 and "network blocked by test" in result.stderr
