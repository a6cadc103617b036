"""The `rag` command line. The only place that turns errors into exit codes.

Heavy modules load inside the commands that need them, so `rag --help` and
`rag articles` start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

from .version import __version__
from .errors import RagError
from .settings import ANSWER_MODES, INDEX_TYPES, MODES, Settings

EXIT_USER_ERROR = 2
# What a shell reports for a program ended by SIGPIPE (128 + 13), as `cat` or
# `grep` give when the reader of their output (`| head`) has gone.
EXIT_BROKEN_PIPE = 141

# Titles, authors, article text and file names come from the corpus, which
# is hostile input: an ESC or CSI (C0/C1 control) sequence in a title would
# recolour, move or clear the user's terminal, a bidi override would show
# text in another order, and a lone surrogate cannot be written at all. They
# are printed as escapes (\x1b, \u202e); tabs and line breaks stay.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _safe(text: str) -> str:
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _print(*parts: object, sep: str = " ", file=None) -> None:
    """print(), with control sequences made visible (see _UNSAFE)."""
    print(_safe(sep.join(map(str, parts))), file=file or sys.stdout)


def _json(data: object) -> str:
    """JSON text; what _UNSAFE matches and JSON would leave raw (C1 controls,
    bidi overrides) is written as a \\u escape, so a parser reads the same text."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"index_type": args.index_type} if getattr(args, "index_type", None) else {}
    overrides.update(backend_overrides(args))
    return Settings.from_env(corpus_dir=Path(args.corpus), index_dir=Path(args.index), **overrides)


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """--backend, --dsn, --replica, --pg-schema: for the CLI and the app alike."""
    parser.add_argument("--backend", choices=("local", "postgres"), default="local", help=(
        "where the index lives: local (the --index folder, default) or postgres (a PostgreSQL + pgvector server "
        "that many app servers share; see README, PostgreSQL backend)"))
    parser.add_argument("--dsn", metavar="DSN", help="with --backend postgres: the primary server, e.g. "
                        "postgresql://rag:PASSWORD@db:5432/rag (or RAG_PG_DSN)")
    parser.add_argument("--replica", action="append", metavar="DSN", help="with --backend postgres: a read replica "
                        "(repeat for several; or RAG_PG_REPLICAS, comma-separated)")
    parser.add_argument("--pg-schema", metavar="NAME", help="with --backend postgres: the PostgreSQL schema holding "
                        "this corpus's index (default: rag)")


def backend_overrides(args: argparse.Namespace) -> dict:
    """--backend postgres --dsn ... as settings (Settings.backend, Settings.postgres);
    RAG_PG_DSN and RAG_PG_REPLICAS fill in what the options leave out."""
    if getattr(args, "backend", "local") != "postgres":
        return {}
    from .postgres import PostgresConfig

    given = {"dsn": args.dsn, "replicas": tuple(args.replica) if args.replica else None, "schema": args.pg_schema}
    return {"backend": "postgres", "postgres": PostgresConfig.from_env(os.environ, **{k: v for k, v in given.items() if v})}


def _load(args: argparse.Namespace, rebuild: bool = False):
    from .core import RAG

    return RAG.load(settings=_settings(args), rebuild=rebuild, progress=not args.quiet)


def cmd_index(args: argparse.Namespace) -> int:
    r = _load(args, rebuild=args.rebuild)
    s = r.summary
    _print(s.describe())
    if s.rebuilt and s.reason not in ("no index yet", "rebuild requested"):
        _print(f"reason: {s.reason}")
    for name, ids in (("added", s.added), ("changed", s.changed), ("removed", s.removed)):
        for article_id in ids:
            _print(f"  {name}: {article_id}")
    for skipped in r.corpus.skipped:
        _print(f"  skipped: {skipped.reason}")
    repaired = [a for a in r.articles if a.repair.total]
    for a in repaired:
        _print(f"  repaired {a.id}: {a.repair.describe()}")
    return 0


def _run_questions(args: argparse.Namespace, command: str, one) -> int:
    """Run `one(r, question)` on the question given, or on each line of input.

    Without a question the index and model stay loaded and questions come one
    per line: at a terminal after a prompt (an empty line quits), from a pipe
    without one, so piped output stays clean.
    """
    if args.question is not None:
        # Refuse a bad question before loading (or building) anything.
        from .questions import check_question

        check_question(args.question, Settings().retrieval.max_question_chars)
    else:
        _refuse_question_taken_as_article(args, command)
        if sys.stdin is None or sys.stdin.closed:
            raise RagError(f'no question given and no input to read one from: pass the question in quotes, rag {command} "..."')
    r = _load(args)
    if args.question is not None:
        one(r, args.question)
        return 0
    interactive = sys.stdin.isatty()
    # Undecodable input bytes become lone surrogates, which check_question
    # refuses with a message, instead of a UnicodeDecodeError ending the loop.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="surrogateescape")
    failed = False  # a question that got an error line: the exit status says so
    if interactive:
        _print("Type a question (empty line or Ctrl-D to quit).", file=sys.stderr)
    while True:
        try:
            line = input("question> ") if interactive else sys.stdin.readline()
        except EOFError:  # Ctrl-D at the prompt
            return EXIT_USER_ERROR if failed else 0
        if not line.strip():
            if interactive or not line:  # at a terminal an empty line quits; in a pipe, end of input
                return EXIT_USER_ERROR if failed else 0
            continue
        try:
            one(r, line.strip())
        except RagError as e:
            _print(f"error: {e}", file=sys.stderr)
            failed = True


def _refuse_question_taken_as_article(args: argparse.Namespace, command: str) -> None:
    """`rag ask --article ID "Who designed it?"`: --article takes every value up
    to the next option, so the question became an article id and the command
    went on to read questions from the input, printing nothing from a pipe
    and a bare prompt at a terminal. A last id that holds spaces and names no
    file of the corpus is that question."""
    from .ingest import normalize_id

    ids = getattr(args, "article", None)
    if not ids or not any(ch.isspace() for ch in ids[-1]):
        return
    known = _corpus_ids(Path(args.corpus))
    if known is not None and normalize_id(ids[-1]) not in {normalize_id(i) for i in known}:
        raise RagError(
            f"--article took {ids[-1]!r} as an article id, so no question was given: put the question first, "
            f'rag {command} "..." --article ID, or end the ids with --'
        )


def cmd_search(args: argparse.Namespace) -> int:
    return _run_questions(args, "search", lambda r, q: _search_one(r, args, q))


def cmd_ask(args: argparse.Namespace) -> int:
    history: list[dict[str, str]] = []  # the conversation so far, for follow-up questions

    def one(r, question: str) -> None:
        answer = r.ask(question, history=history, k=args.k, articles=args.article or None, mode=args.mode)
        history.extend([{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}])
        _print(_json(asdict(answer)) if args.json else _format_answer(r, answer))

    return _run_questions(args, "ask", one)


def _bold(text: str) -> str:
    """Bold at a terminal (unless NO_COLOR is set); plain where output is piped or saved."""
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[1m{text}\033[0m"
    return text


def _format_answer(r, answer) -> str:
    # A doubt first (it bears on all that follows), then the short answer: the
    # words that answer a factoid question, then the sentences that say it.
    from .calibration import doubt_first

    doubts, others = doubt_first(answer.notes)
    lines = [f"note: {note}" for note in doubts]
    lines += [f"Short answer: {_bold(' '.join(answer.short.text.split()))}", ""] if answer.short else []
    lines += [answer.text]
    lines += [f"note: {note}" for note in others]
    if answer.unsupported:  # removed from the answer; shown as inert text, never as part of it
        lines += ["", "Not supported by the passages (removed from the answer):"]
        lines += [f"- “{sentence}”" for sentence in answer.unsupported]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            lines.append(f"[{c.n}] {r.article(c.article_id).source_line}  ({c.article_id}, chars {c.start}-{c.end})")
            lines.append(f"    “{' '.join(c.quote.split())}”")
    elif answer.abstained and answer.hits:
        lines += ["", "Closest passages:"]
        for hit in answer.hits[:3]:
            text = " ".join(hit.text.split())
            lines.append(f"- {r.article(hit.article_id).source_line}: {text[:200]}{'…' if len(text) > 200 else ''}")
    return "\n".join(lines) + "\n"


def _search_one(r, args: argparse.Namespace, question: str) -> int:
    hits = r.retrieve(question, k=args.k, articles=args.article or None, mode=args.mode)
    if args.json:
        _print(_json([asdict(h) for h in hits]))
        return 0
    if not hits:
        _print("no passage matches this question")
    for rank, hit in enumerate(hits, start=1):
        article = r.article(hit.article_id)
        _print(f"{rank}. [{hit.score:.4f}] {article.source_line}  ({hit.chunk_id}, chars {hit.start}-{hit.end})")
        text = " ".join(hit.text.split())
        _print(f"   {text if args.full else (text[:300] + ('…' if len(text) > 300 else ''))}")
    return 0


def cmd_articles(args: argparse.Namespace) -> int:
    from .ingest import load_corpus

    corpus = load_corpus(Path(args.corpus), max_file_mb=_settings(args).index.max_file_mb)
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
        _print(_json({"articles": rows, "skipped": [asdict(s) for s in corpus.skipped]}))
        return 0
    for row in rows:
        mark = " (descriptive title)" if row["title_is_descriptive"] else ""
        _print(f"{row['id']}  {row['title']}{mark}")
        details = [x for x in (row["author"], row["publisher"], row["date"]) if x]
        _print(f"    {', '.join(details) or 'no author, publisher or date printed'}; {row['characters']:,} characters; "
              f"{row['repair']['total']} repairs")
    for s in corpus.skipped:
        _print(f"skipped: {s.reason}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from .core import RAG
    from .embedding import embedder_for
    from .evalset import load_questions
    from .evaluate import compare, evaluate, load_floors, retrieval_only
    from .report import ARTICLE_METRICS, articles_table, comparison_table, kinds_table, overall_table, write_report

    if args.k < 1:
        raise RagError(f"--k must be at least 1, not {args.k}")
    # Every problem of the file, article ids included (the corpus's file
    # names give them), is reported at once and before the model loads.
    load_questions(args.file, _corpus_ids(Path(args.corpus)))
    if args.floors_set and not args.floors:
        raise RagError("--floors-set needs --floors FILE (e.g. --floors eval/floors.json --floors-set squad)")
    floors = load_floors(args.floors, args.floors_set) if args.floors else None
    report_dir = Path(args.report) if args.report else None
    for folder in ([report_dir] if report_dir else []) + ([Path(args.json).parent] if args.json and args.json != "-" else []):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RagError(f"cannot create {folder} ({e.strerror}): pass another path") from e

    # The query cache would make repeated questions look fast.
    settings = _settings(args).replace(query_cache_size=0)
    progress = not args.quiet
    embedder = embedder_for(settings.index)  # one model for both indexes
    r = RAG.load(settings=settings, embedder=embedder, progress=progress)
    questions = load_questions(args.file, {a.id for a in r.articles})
    answer_mode = args.answer_mode or settings.answer.mode
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
        text = _json(data)
        if args.json == "-":
            _print(text)
        else:
            _write(Path(args.json), text + "\n")
    if args.json != "-":
        n_answerable = sum(row.answerable for row in result.rows)
        _print(f"{len(result.rows)} questions from {args.file} ({n_answerable} answerable); retrieval {result.mode}, "
              f"answers {result.answer_mode}, k={result.k}; {seconds:.1f} s\n")
        _print(overall_table(result), "", "By kind of question:", "", kinds_table(result), "",
              "Per article:", "", articles_table(result, names=ARTICLE_METRICS), sep="\n")
        if comparison:
            _print("", "Side by side:", "", comparison_table(comparison), sep="\n")
    if report_dir:
        titles = {a.id: a.title for a in r.articles}
        modes = None
        if not comparison:  # the hit@k plot still shows every retrieval mode, by retrieval alone
            modes = {m: result.metrics if m == result.mode else retrieval_only(r, questions, m, args.k) for m in ("dense", "bm25", "hybrid")}
        try:
            written = write_report(report_dir, result, source=str(args.file), titles=titles, comparison=comparison, modes=modes)
        except OSError as e:
            raise RagError(f"cannot write the report to {report_dir} ({e.strerror}): pass another folder") from e
        _print(f"\nreport: {written[0]}", *(f"plot: {p}" for p in written[1:]), sep="\n", file=sys.stderr if args.json == "-" else sys.stdout)
    if floors:
        failures = floors.failures(result.metrics)
        for failure in failures:
            _print(f"below floor: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


def _corpus_ids(folder: Path) -> set[str] | None:
    """The article ids a corpus folder's files will have (their stems); None
    when the folder cannot be listed or holds no article (loading it says why)."""
    from .ingest import SUFFIXES

    try:
        ids = {p.stem for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file()}
    except OSError:
        return None
    return ids or None


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
    add_backend_options(common)
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
        "and, for questions with gold short answers, passage-answer@1/3/5, answer-contains-gold, short-answer "
        "exact match and F1; overall, per kind of question and per article. See README, Evaluation, for the "
        "file format."))
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
    p.add_argument("--floors-set", metavar="NAME",
                   help="use the floors of the set NAME in the floors file's \"sets\" (e.g. squad, for eval/squad/questions.jsonl)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("articles", parents=[common], help="list the articles and what the repair fixed", description=(
        "List the corpus: id, title, author, publisher, date, size and repairs; and files that were skipped."))
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_articles)
    return parser


class _SafeFormatter(logging.Formatter):
    """Warnings name files and titles: printed with control sequences escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return _safe(super().format(record))


def _configure_logging(quiet: bool) -> None:
    """Show the product's own warnings; other libraries only when they fail.

    Some libraries set their own loggers' levels when imported (bm25s logs its
    progress at DEBUG), so the filter sits on the handler, not on their loggers.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("warning: %(message)s"))
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
        _print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The `rag` command: main(), then a quick exit once the model was loaded.

    Tearing down torch and sentence-transformers at interpreter exit took 1 to
    2.5 s here after the answer was printed. Every file the commands write is
    closed by then, so once output is flushed the process ends at once.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of the output went away (`rag articles | head`): stop
        # quietly, as other command-line tools do. Output still buffered for
        # the closed pipe goes to /dev/null, so exiting does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    if "torch" in sys.modules:
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
