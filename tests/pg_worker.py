"""An app server in its own process for the postgres tests: JSON commands on
stdin, one JSON reply per line on stdout.

    python tests/pg_worker.py DSN SCHEMA MODEL_CACHE
    {"op": "open", "corpus": "/path"}            -> {"rebuilt": false, "reason": "up to date", "chunks": 73}
    {"op": "open", "corpus": "/path", "hang": true, "rebuild": false}
        -> {"hanging": true} once the refresh's transaction is written but not
           committed, then sleeps there (the kill test kills it)
    {"op": "search", "q": "...", "mode": "hybrid"} -> {"hits": [[chunk id, score], ...]} or {"error": "..."}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import postgres  # noqa: E402
from rag.embedding import make_embedder  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.ingest import load_corpus  # noqa: E402
from rag.postgres import PostgresBackend, PostgresConfig  # noqa: E402
from rag.settings import Settings  # noqa: E402


def reply(value: dict) -> None:
    print(json.dumps(value), flush=True)


def main() -> None:
    dsn, schema, cache = sys.argv[1:4]
    config = PostgresConfig(dsn=dsn, schema=schema)
    embedder = make_embedder("all-MiniLM-L6-v2", cache_dir=Path(cache))
    settings = Settings()
    backend = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "open":
                if command.get("hang"):
                    def hang(conn) -> None:
                        reply({"hanging": True})
                        time.sleep(3600)

                    postgres._before_commit = hang
                if backend is not None:
                    backend.close()
                backend = PostgresBackend.open(load_corpus(Path(command["corpus"])), settings, embedder, config=config,
                                               rebuild=command.get("rebuild", False))
                s = backend.summary
                reply({"rebuilt": s.rebuilt, "reason": s.reason, "chunks": s.chunks, "embedded": s.embedded})
            elif command["op"] == "search":
                q = command["q"]
                vector = embedder.embed([q])[0]
                hits = backend.search(q, vector, 5, None, command.get("mode", "hybrid"))
                reply({"hits": [[h.chunk.id, h.score] for h in hits]})
            elif command["op"] == "quit":
                break
        except RagError as e:
            reply({"error": str(e)})
    if backend is not None:
        backend.close()


if __name__ == "__main__":
    main()
