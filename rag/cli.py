"""The `rag` command line. The only place that turns errors into exit codes.

Heavy modules load inside the commands that need them, so `rag --help` and
`rag articles` start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

from . import __version__
from .errors import RagError
from .settings import ANSWER_MODES, INDEX_TYPES, MODES, Settings

EXIT_USER_ERROR = 2


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"index_type": args.index_type} if getattr(args, "index_type", None) else {}
    return Settings.from_env(corpus_dir=Path(args.corpus), index_dir=Path(args.index), **overrides)


def _load(args: argparse.Namespace, rebuild: bool = False):
    from .core import RAG

    return RAG.load(settings=_settings(args), rebuild=rebuild, progress=not args.quiet)


def cmd_index(args: argparse.Namespace) -> int:
    r = _load(args, rebuild=args.rebuild)
    s = r.summary
    print(s.describe())
    if s.rebuilt and s.reason not in ("no index yet", "rebuild requested"):
        print(f"reason: {s.reason}")
    for name, ids in (("added", s.added), ("changed", s.changed), ("removed", s.removed)):
        for article_id in ids:
            print(f"  {name}: {article_id}")
    for skipped in r.corpus.skipped:
        print(f"  skipped: {skipped.reason}")
    repaired = [a for a in r.articles if a.repair.total]
    for a in repaired:
        rep = a.repair
        print(
            f"  repaired {a.id}: {rep.swapped_chars} swapped characters, {rep.dashes_respaced} dashes re-spaced, "
            f"{rep.furniture_lines} page-furniture lines, {rep.joined_lines} line breaks joined, "
            f"{rep.encoding_fixes} characters normalised"
        )
    return 0


def _source(article) -> str:
    details = [x for x in (article.author or article.publisher, article.date) if x]
    return article.title + (f" — {', '.join(details)}" if details else "")


def _run_questions(args: argparse.Namespace, command: str, one) -> int:
    """Run `one(r, question)` on the question given, or on each line of input.

    Without a question the index and model stay loaded and questions come one
    per line: at a terminal after a prompt (an empty line quits), from a pipe
    without one, so piped output stays clean.
    """
    if args.question is not None:
        # Refuse a bad question before loading (or building) anything.
        from .questions import check_question

        check_question(args.question, Settings().max_question_chars)
    elif sys.stdin is None or sys.stdin.closed:
        raise RagError(f'no question given and no input to read one from: pass the question in quotes, rag {command} "..."')
    r = _load(args)
    if args.question is not None:
        one(r, args.question)
        return 0
    interactive = sys.stdin.isatty()
    if interactive:
        print("Type a question (empty line or Ctrl-D to quit).", file=sys.stderr)
    while True:
        try:
            line = input("question> ") if interactive else sys.stdin.readline()
        except EOFError:  # Ctrl-D at the prompt
            return 0
        if not line.strip():
            if interactive or not line:  # at a terminal an empty line quits; in a pipe, end of input
                return 0
            continue
        try:
            one(r, line.strip())
        except RagError as e:
            print(f"error: {e}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> int:
    return _run_questions(args, "search", lambda r, q: _search_one(r, args, q))


def cmd_ask(args: argparse.Namespace) -> int:
    history: list[dict[str, str]] = []  # the conversation so far, for follow-up questions

    def one(r, question: str) -> None:
        answer = r.ask(question, history=history, k=args.k, articles=args.article or None, mode=args.mode)
        history.extend([{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}])
        print(json.dumps(asdict(answer), ensure_ascii=False, indent=2) if args.json else _format_answer(r, answer))

    return _run_questions(args, "ask", one)


def _bold(text: str) -> str:
    """Bold at a terminal (unless NO_COLOR is set); plain where output is piped or saved."""
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[1m{text}\033[0m"
    return text


def _format_answer(r, answer) -> str:
    # The short answer first: the words that answer a factoid question, then the sentences that say it.
    lines = [f"Short answer: {_bold(' '.join(answer.short.text.split()))}", ""] if answer.short else []
    lines += [answer.text]
    lines += [f"note: {note}" for note in answer.notes]
    lines += [f"not supported by the articles: “{sentence}”" for sentence in answer.unsupported]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            lines.append(f"[{c.n}] {_source(r.article(c.article_id))}  ({c.article_id}, chars {c.start}-{c.end})")
            lines.append(f"    “{' '.join(c.quote.split())}”")
    elif answer.abstained and answer.hits:
        lines += ["", "Closest passages:"]
        for hit in answer.hits[:3]:
            text = " ".join(hit.text.split())
            lines.append(f"- {_source(r.article(hit.article_id))}: {text[:200]}{'…' if len(text) > 200 else ''}")
    return "\n".join(lines) + "\n"


def _search_one(r, args: argparse.Namespace, question: str) -> int:
    hits = r.retrieve(question, k=args.k, articles=args.article or None, mode=args.mode)
    if args.json:
        print(json.dumps([asdict(h) for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no passage matches this question")
    for rank, hit in enumerate(hits, start=1):
        article = r.article(hit.article_id)
        print(f"{rank}. [{hit.score:.4f}] {_source(article)}  ({hit.chunk_id}, chars {hit.start}-{hit.end})")
        text = " ".join(hit.text.split())
        print(f"   {text if args.full else (text[:300] + ('…' if len(text) > 300 else ''))}")
    return 0


def cmd_articles(args: argparse.Namespace) -> int:
    from .ingest import load_corpus

    corpus = load_corpus(Path(args.corpus))
    rows = []
    for a in corpus.articles:
        rows.append(
            {
                "id": a.id,
                "title": a.title,
                "title_is_descriptive": a.title_is_descriptive,
                "author": a.author,
                "publisher": a.publisher,
                "date": a.date,
                "source": a.source,
                "characters": len(a.text),
                "repair": {**asdict(a.repair), "total": a.repair.total},
            }
        )
    if args.json:
        print(json.dumps({"articles": rows, "skipped": [asdict(s) for s in corpus.skipped]}, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        mark = " (descriptive title)" if row["title_is_descriptive"] else ""
        print(f"{row['id']}  {row['title']}{mark}")
        details = [x for x in (row["author"], row["publisher"], row["date"]) if x]
        print(f"    {', '.join(details) or 'no author, publisher or date printed'}; {row['characters']:,} characters; "
              f"{row['repair']['total']} repairs")
    for s in corpus.skipped:
        print(f"skipped: {s.reason}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from .core import RAG
    from .embedding import make_embedder
    from .evalset import load_questions
    from .evaluate import compare, evaluate, load_floors, retrieval_only
    from .report import ARTICLE_METRICS, articles_table, comparison_table, overall_table, write_report

    if args.k < 1:
        raise RagError(f"--k must be at least 1, not {args.k}")
    load_questions(args.file)  # a bad line is reported before the model loads
    floors = load_floors(args.floors) if args.floors else None
    report_dir = Path(args.report) if args.report else None
    for folder in ([report_dir] if report_dir else []) + ([Path(args.json).parent] if args.json and args.json != "-" else []):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RagError(f"cannot create {folder} ({e.strerror}): pass another path") from e

    # The query cache would make repeated questions look fast.
    settings = _settings(args).replace(query_cache_size=0)
    progress = not args.quiet
    embedder = make_embedder(
        settings.model, settings.embed_batch_size, backend=settings.embed_backend, cache_dir=settings.cache_dir
    )  # one model for both indexes
    r = RAG.load(settings=settings, embedder=embedder, progress=progress)
    questions = load_questions(args.file, {a.id for a in r.articles})
    answer_mode = args.answer_mode or settings.answer_mode
    started = time.perf_counter()
    comparison = None
    if args.compare:
        # The raw text gets its own throw-away index; the user's index is untouched.
        with tempfile.TemporaryDirectory(prefix="rag-raw-index-") as raw_index:
            raw = RAG.load(settings=settings.replace(repair=False, index_dir=Path(raw_index)), embedder=embedder, progress=progress)
            comparison = compare(r, questions, raw=raw, k=args.k, answer_mode=answer_mode, progress=progress)
        result = next(c for c in comparison if c.mode == args.mode and c.text == "repaired")
    else:
        result = evaluate(r, questions, k=args.k, mode=args.mode, answer_mode=answer_mode, progress=progress)
    seconds = time.perf_counter() - started

    if args.json:
        data = result.to_json()
        if comparison:
            data["comparison"] = [{"mode": c.mode, "text": c.text, **c.metrics} for c in comparison]
        text = json.dumps(data, ensure_ascii=False, indent=2)
        if args.json == "-":
            print(text)
        else:
            _write(Path(args.json), text + "\n")
    if args.json != "-":
        n_answerable = sum(row.answerable for row in result.rows)
        print(f"{len(result.rows)} questions from {args.file} ({n_answerable} answerable); retrieval {result.mode}, "
              f"answers {result.answer_mode}, k={result.k}; {seconds:.1f} s\n")
        print(overall_table(result), "", "Per article:", "", articles_table(result, names=ARTICLE_METRICS), sep="\n")
        if comparison:
            print("", "Side by side:", "", comparison_table(comparison), sep="\n")
    if report_dir:
        titles = {a.id: a.title for a in r.articles}
        modes = None
        if not comparison:  # the hit@k plot still shows every retrieval mode, by retrieval alone
            modes = {m: result.metrics if m == result.mode else retrieval_only(r, questions, m, args.k) for m in ("dense", "bm25", "hybrid")}
        try:
            written = write_report(report_dir, result, source=str(args.file), titles=titles, comparison=comparison, modes=modes)
        except OSError as e:
            raise RagError(f"cannot write the report to {report_dir} ({e.strerror}): pass another folder") from e
        print(f"\nreport: {written[0]}", *(f"plot: {p}" for p in written[1:]), sep="\n", file=sys.stderr if args.json == "-" else sys.stdout)
    if floors:
        failures = floors.failures(result.metrics)
        for failure in failures:
            print(f"below floor: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise RagError(f"cannot write {path} ({e.strerror}): pass another path") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Search and question a corpus of articles; every passage leads back to its article.",
    )
    parser.add_argument("--version", action="version", version=f"rag {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", default="corpus", metavar="DIR", help="folder of articles (default: ./corpus)")
    common.add_argument("--index", default="index", metavar="DIR", help="folder of the index (default: ./index)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars or warnings")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="build or refresh the index", description=(
        "Build the index, or refresh it after articles were added, changed or removed "
        "(only changed text is re-embedded). Prints what changed and what the text repair fixed."))
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch, ignoring the current index")
    p.add_argument("--index-type", choices=INDEX_TYPES, default=None, help=(
        "vector index: flat (exact), hnsw or ivf (approximate, for large corpora), or auto (flat below 50,000 "
        "chunks, hnsw from there); the index remembers it (default: keep the index's own, auto for a new one; "
        "or RAG_INDEX_TYPE)"))
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", parents=[common], help="ranked passages for a question", description=(
        "Print the passages that best match a question, with article, score and character offsets. "
        "Builds or refreshes the index first when needed."))
    p.add_argument("question", nargs="?", help="the question, in quotes (none: ask at a prompt)")
    p.add_argument("-k", type=int, default=5, metavar="N", help="number of passages (default: 5)")
    p.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval mode (default: hybrid)")
    p.add_argument("--article", action="extend", nargs="+", metavar="ID", help="search only these article ids")
    p.add_argument("--full", action="store_true", help="print whole passages instead of their first 300 characters")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", parents=[common], help="answer a question with cited sources", description=(
        "Answer a question from the articles: the answer with [n] markers, then each source's title, author or "
        "publisher, date and the quoted sentence. Without a question, asks at a prompt and keeps the conversation, "
        "so follow-up questions work."))
    p.add_argument("question", nargs="?", help="the question, in quotes (none: ask at a prompt)")
    p.add_argument("--mode", choices=ANSWER_MODES, default=None,
                   help="extractive (default; quotes the articles) or llm (needs RAG_LLM_BASE_URL and RAG_LLM_MODEL)")
    p.add_argument("-k", type=int, default=5, metavar="N", help="passages to consider (default: 5)")
    p.add_argument("--article", action="extend", nargs="+", metavar="ID", help="answer only from these article ids")
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", parents=[common], help="measure retrieval and answers on a question set", description=(
        "Run every question of a JSON Lines question file through retrieve and ask, and print hit@1/3/5, MRR, "
        "fact recall, citation validity and precision, abstention accuracy, false abstention rate and latency, "
        "overall and per article. See README, Evaluation, for the file format."))
    p.add_argument("file", help="the question file (JSON Lines), e.g. eval/questions.jsonl")
    p.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval mode (default: hybrid)")
    p.add_argument("--answer-mode", choices=ANSWER_MODES, default=None,
                   help="extractive (default unless RAG_LLM_* configure a model) or llm")
    p.add_argument("-k", "--k", type=int, default=5, metavar="N", help="passages per question (default: 5)")
    p.add_argument("--json", metavar="OUT", help="write the metrics and per-question rows as JSON to OUT (- for standard output)")
    p.add_argument("--report", metavar="DIR", help="write report.md and PNG plots into DIR")
    p.add_argument("--compare", action="store_true",
                   help="also run side by side: dense, bm25 and hybrid retrieval, on repaired and on raw text "
                        "(builds a temporary raw-text index)")
    p.add_argument("--floors", metavar="FILE",
                   help="exit with status 1 when a metric is outside its floor or ceiling in FILE (e.g. eval/floors.json)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("articles", parents=[common], help="list the articles and what the repair fixed", description=(
        "List the corpus: id, title, author, publisher, date, size and repairs; and files that were skipped."))
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_articles)
    return parser


def _configure_logging(quiet: bool) -> None:
    """Show the product's own warnings; other libraries only when they fail.

    Some libraries set their own loggers' levels when imported (bm25s logs its
    progress at DEBUG), so the filter sits on the handler, not on their loggers.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.addFilter(lambda record: record.name.split(".")[0] == "rag" or record.levelno >= logging.ERROR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR if quiet else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    _configure_logging(quiet=args.quiet)
    try:
        return args.func(args)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The `rag` command: main(), then a quick exit once the model was loaded.

    Tearing down torch and sentence-transformers at interpreter exit took 1 to
    2.5 s here after the answer was printed. Every file the commands write is
    closed by then, so once output is flushed the process ends at once.
    """
    code = main()
    if "torch" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
