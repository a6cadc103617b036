"""Load on the chat app: concurrent clients asking through its /ask API.

    .venv/bin/python benchmarks/load.py                 # 20 clients, 10 questions each
    .venv/bin/python benchmarks/load.py --clients 80 --per-client 5

Starts app.py on a free loopback port (its own index folder, built first),
asks every question of eval/questions.jsonl once alone for reference answers,
then lets N clients ask at once, each its own questions in turn, and
reports request latency (p50, p95, max), throughput, errors, and how many
answers differ from the answer given alone (none should: answers are
deterministic). The load is bounded (clients x questions) and loopback only.
Writes benchmarks/results/load.json (gitignored).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402 - the benchmark's own helpers: process handling, HTTP, percentiles
    APP, CHILD_TIMEOUT, ROOT, Child, build_cli_index, child_env, free_port, http_ask, latency, load_queries, note,
    wait_until_serving,
)
from measure import write_json  # noqa: E402

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "load.json"


def one(port: int, question: str) -> tuple[float, str | None, str | None]:
    """(milliseconds, answer text or None, error or None) for one request."""
    started = time.perf_counter()
    try:
        payload = http_ask(port, question)
    except (OSError, SystemExit, ValueError) as e:  # a refused, dropped or failed request counts as an error
        return (time.perf_counter() - started) * 1000.0, None, f"{type(e).__name__}: {e}"
    ms = (time.perf_counter() - started) * 1000.0
    if payload.get("error"):
        return ms, None, str(payload["error"])
    return ms, payload.get("text"), None


def run(clients: int, per_client: int, corpus: Path) -> dict:
    questions = load_queries(clients * per_client)
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        work = Path(tmp)
        note("building the app's index (untimed)")
        build_cli_index(corpus, work / "index")
        port = free_port()
        log = work / "app.log"
        with log.open("wb") as out:
            child = Child(subprocess.Popen(
                [sys.executable, str(APP), "--host", "127.0.0.1", "--port", str(port), "--corpus", str(corpus),
                 "--index", str(work / "index")],
                cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT))
        try:
            wait_until_serving(child, port, log, time.perf_counter() + CHILD_TIMEOUT)
            distinct = list(dict.fromkeys(questions))
            note(f"reference answers: {len(distinct)} questions, one at a time")
            alone = {q: one(port, q) for q in distinct}
            note(f"load: {clients} clients x {per_client} questions")
            batches = [questions[i::clients] for i in range(clients)]
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                results = list(pool.map(lambda batch: [(q, *one(port, q)) for q in batch], batches))
            seconds = time.perf_counter() - started
        finally:
            child.stop()
    flat = [r for batch in results for r in batch]
    errors = [e for _, _, _, e in flat if e]
    differ = sum(1 for q, _, text, e in flat if not e and text != alone[q][1])
    return {
        "clients": clients,
        "per_client": per_client,
        "requests": len(flat),
        "seconds": seconds,
        "requests_per_second": len(flat) / seconds,
        "latency": latency([ms for _, ms, _, _ in flat]),
        "alone_latency": latency([ms for ms, _, _ in alone.values()]),
        "errors": len(errors),
        "error_examples": errors[:5],
        "differ_from_alone": differ,
        "app_peak_rss_mb": child.peak_rss_mb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Writes benchmarks/results/load.json.")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--per-client", type=int, default=10, help="questions each client asks in turn (default 10)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", help="the corpus folder (default ./corpus)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.per_client < 1:
        parser.error("--clients and --per-client must be at least 1")
    data = run(args.clients, args.per_client, args.corpus)
    write_json(args.json, data)
    lat, alone = data["latency"], data["alone_latency"]
    print(f"{data['clients']} clients x {data['per_client']} questions: {data['requests']} requests in "
          f"{data['seconds']:.1f} s ({data['requests_per_second']:.1f}/s)")
    print(f"  latency under load  p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
    print(f"  alone               p50 {alone['p50_ms']:.0f} ms, p95 {alone['p95_ms']:.0f} ms")
    print(f"  errors {data['errors']}, answers that differ from the answer given alone {data['differ_from_alone']}; "
          f"app peak RSS {data['app_peak_rss_mb']:.0f} MB")
    return 1 if data["errors"] or data["differ_from_alone"] else 0


if __name__ == "__main__":
    sys.exit(main())
