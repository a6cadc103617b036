"""The `postgres` search backend: the index in PostgreSQL with pgvector,
shared by any number of app servers.

One corpus lives in one PostgreSQL schema (rag/pgschema.sql): articles,
chunks with their vectors (HNSW) and BM25 postings, sentences with their
vectors, and the two word tables (chunk vocabulary, sentence frequencies).

* Build and refresh by content hash, in one transaction: a reader sees the
  old index or the new one, never a mix, and a build killed half-way leaves
  the old one (the server rolls back a transaction whose client is gone).
  A session advisory lock makes concurrent builders wait for each other;
  the one that waited finds the index fresh.
* Every search is one SQL statement: dense k-NN over the HNSW index, BM25
  over the postings (the local backend's tokens and formula, so its scores
  match bm25s's), the article filter, and the fusion.
* `meta.generation` grows at every refresh and every read returns it: a
  replica that has not replayed the latest refresh is skipped for the
  primary, and a process whose corpus is older than the database's is told
  to reload instead of citing offsets into text it does not have.
* Connection faults get one retry on a fresh connection; what is left
  becomes a one-line StoreError naming the server (never its password).

Needs the `postgres` extra: pip install 'rag-articles[postgres]'.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .version import __version__
from .embedding import Embedder
from .errors import SettingsError, StoreError
from .indexer import BuildSummary, article_key, embedded_units
from .ingest import Corpus
from .settings import RetrievalSettings, Settings, env_number
from .sparse import TOKENIZER_ID, tokenize
from .types import Article, ChunkRecord, SentenceRecord

from .retrieval import Scored
from .evidence import SentenceBatch
from .trace import NO_TRACE, Trace

log = logging.getLogger("rag")

SCHEMA_VERSION = 2  # 2: postings.impact and meta.impact_avgdl (the capped BM25)
SCHEMA_SQL = Path(__file__).with_name("pgschema.sql")
AFTER_LOAD = "-- after the load"
FULLTEXT_RANKINGS = ("bm25", "ts_rank")
# bm25s's defaults (method "lucene"): the local backend's BM25.
BM25_K1 = 1.5
BM25_B = 0.75
BM25_DIGITS = 9
BM25_ROUND = 10.0 ** -BM25_DIGITS
# Room for the "__next" and "__old" suffixes of a full build in PostgreSQL's 63 bytes.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,55}")
# Rows per COPY batch: keeps a big build's client memory flat.
_COPY_BATCH = 5_000
INSTALL_HINT = "the postgres backend needs psycopg, psycopg_pool and pgvector: pip install 'rag-articles[postgres]'"


@dataclass(frozen=True)
class PostgresConfig:
    """Where the index lives and how it is searched."""

    dsn: str  # libpq URI or key=value string of the primary, e.g. postgresql://rag@db:5432/rag
    replicas: tuple[str, ...] = ()  # read-only streaming replicas that take the reads
    schema: str = "rag"  # one corpus per schema: several corpora can share a database
    # HNSW width at query time. At 100k chunks (benchmarks/pg_scale.py,
    # derived vectors) recall@10 was 0.894 at 40 (pgvector's default), 0.962
    # at 100, 0.992 at 200 and 0.996 at 400 for 80% more time; derived vectors
    # are about 0.03 optimistic, so 200 keeps real data above 0.95.
    ef_search: int = 200
    # pgvector's defaults for the graph (README, "PostgreSQL backend").
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    pool_min: int = 1
    pool_max: int = 4  # per process: a gunicorn of 8 workers opens at most 8 x 4 connections
    statement_timeout_ms: int = 10_000  # a read stuck behind a lock fails instead of hanging a request
    connect_timeout_s: float = 5.0
    retries: int = 1  # re-runs of a read whose connection broke (reads are idempotent)
    fulltext: str = "bm25"  # "bm25" (postings, the local formula) or "ts_rank" (PostgreSQL's tsvector rank)
    # BM25 reads at most this many postings per query word, best impact first,
    # scores the likeliest chunks exactly and proves from the unread postings'
    # bound that no other chunk could enter the list; when it cannot prove it
    # the query runs again over every posting. 0 always reads every posting,
    # and so does an index of at most 10 x bm25_cap chunks or a filtered search.
    bm25_cap: int = 2000
    bm25_rescore: int = 400  # chunks scored exactly from their postings after the capped read
    # False: keep the capped list even when it cannot be proven exact (bounded
    # time, a measured loss of recall: README, "PostgreSQL backend").
    bm25_exact: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "replicas", tuple(self.replicas))
        checks = [
            (isinstance(self.dsn, str) and bool(self.dsn.strip()), "dsn must name the primary server, e.g. postgresql://user:password@host:5432/db"),
            (bool(_IDENTIFIER.fullmatch(self.schema or "")), f"schema {self.schema!r} must be a lower-case identifier (letters, digits, _)"),
            (self.ef_search >= 1, "ef_search must be at least 1"),
            (2 <= self.hnsw_m <= 100, "hnsw_m must be between 2 and 100 (pgvector's range)"),
            (self.hnsw_ef_construction >= 2 * self.hnsw_m, "hnsw_ef_construction must be at least 2 x hnsw_m"),
            (1 <= self.pool_min <= self.pool_max, "pool sizes need 1 <= pool_min <= pool_max"),
            (self.statement_timeout_ms >= 0, "statement_timeout_ms must be 0 (none) or more"),
            (self.connect_timeout_s > 0, "connect_timeout_s must be above 0"),
            (self.retries >= 0, "retries must be 0 or more"),
            (self.fulltext in FULLTEXT_RANKINGS, f"fulltext must be one of {', '.join(FULLTEXT_RANKINGS)}"),
            (self.bm25_cap >= 0, "bm25_cap must be 0 (read every posting) or more"),
            (self.bm25_rescore >= 1, "bm25_rescore must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"invalid postgres setting: {message}")
        for dsn in (self.dsn, *self.replicas):
            _parse_dsn(dsn)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "PostgresConfig":
        """The config in `settings`: its `postgres` group (a PostgresConfig or a
        mapping of these fields) when the grouped Settings have one, else the
        flat fields `pg_dsn`, `pg_replicas`, ...; `overrides` win."""
        group = getattr(getattr(settings, "index", settings), "postgres", None)
        if isinstance(group, PostgresConfig):
            values = dataclasses.asdict(group)
        elif isinstance(group, Mapping):
            values = dict(group)
        else:
            values = {f.name: getattr(settings, f"pg_{f.name}") for f in dataclasses.fields(cls) if hasattr(settings, f"pg_{f.name}")}
        values.update(overrides)
        if not values.get("dsn"):
            raise SettingsError("the postgres backend needs a DSN: pass --dsn postgresql://user:password@host:5432/db (or set RAG_PG_DSN)")
        return cls.from_dict(values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "PostgresConfig":
        """RAG_PG_DSN, RAG_PG_REPLICAS (comma-separated DSNs), RAG_PG_SCHEMA,
        RAG_PG_EF_SEARCH; for the edge (CLI, app), never read in the library."""
        values: dict[str, Any] = {}
        if environ.get("RAG_PG_DSN"):
            values["dsn"] = environ["RAG_PG_DSN"]
        if environ.get("RAG_PG_REPLICAS"):
            values["replicas"] = tuple(d.strip() for d in environ["RAG_PG_REPLICAS"].split(",") if d.strip())
        if environ.get("RAG_PG_SCHEMA"):
            values["schema"] = environ["RAG_PG_SCHEMA"]
        if environ.get("RAG_PG_EF_SEARCH"):
            values["ef_search"] = env_number(environ, "RAG_PG_EF_SEARCH", int, "a whole number")
        values.update(overrides)
        if not values.get("dsn"):
            raise SettingsError("the postgres backend needs a DSN: pass --dsn postgresql://user:password@host:5432/db (or set RAG_PG_DSN)")
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PostgresConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown postgres setting(s) {', '.join(unknown)}: valid names are {', '.join(sorted(known))}")
        return cls(**values)


def _parse_dsn(dsn: str) -> dict[str, str]:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as e:
        raise SettingsError(INSTALL_HINT) from e
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except Exception as e:  # psycopg.ProgrammingError on a malformed string
        raise SettingsError(f"the PostgreSQL DSN is malformed ({_first_line(e)}): use postgresql://user:password@host:5432/db") from None


def describe_dsn(dsn: str) -> str:
    """The server and database a DSN names, without its password: 'rag@127.0.0.1:5432/rag'."""
    try:
        parts = _parse_dsn(dsn)
    except SettingsError:
        return "the configured server"
    host = parts.get("host", "localhost")
    where = f"{host}:{parts.get('port', '5432')}" if not host.startswith("/") else host
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"{user}{where}/{parts.get('dbname', parts.get('user', ''))}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0].strip()


def _store_error(e: BaseException, dsn: str, doing: str) -> StoreError:
    """A psycopg or pool error as one line that names the server and the fix."""
    where = describe_dsn(dsn)
    message = _first_line(e)
    lower = str(e).lower()
    if "password authentication failed" in lower or "no password supplied" in lower:
        return StoreError(f"PostgreSQL at {where} refused the login (password authentication failed)",
                          fix="check the user and password in the DSN (or PGPASSWORD / ~/.pgpass)")
    if "does not exist" in lower and "database" in lower:
        return StoreError(f"PostgreSQL at {where}: {message}", fix="create the database, or fix the database name in the DSN")
    if type(e).__name__ == "QueryCanceled" or "statement timeout" in lower:
        return StoreError(f"PostgreSQL at {where} did not finish {doing} within the statement timeout",
                          fix="raise PostgresConfig.statement_timeout_ms, or look for a long lock on the index tables")
    if type(e).__name__ in ("PoolTimeout", "ConnectionTimeout") or "connection refused" in lower or "could not connect" in lower \
            or "timeout expired" in lower or "connection failed" in lower or "server closed" in lower \
            or "terminating connection" in lower or "connection is lost" in lower or "consuming input failed" in lower:
        return StoreError(f"cannot reach PostgreSQL at {where} while {doing} ({message})",
                          fix="start the server, or fix the host and port in --dsn")
    return StoreError(f"PostgreSQL at {where} failed while {doing} ({type(e).__name__}: {message})",
                      fix="see the server's log; `rag index --backend postgres --rebuild` rebuilds the index")


def _retryable(e: BaseException) -> bool:
    """A broken connection (dropped, server restarted, failed over), not a bad query."""
    import psycopg

    if type(e).__name__ == "QueryCanceled":
        return False
    return isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError)) or type(e).__name__ == "PoolTimeout"


@dataclass(frozen=True)
class _State:
    """What this process validated the database against."""

    generation: int
    n_chunks: int
    dimension: int


def _load_schema_sql(schema: str, dimension: int, config: PostgresConfig) -> tuple[str, str]:
    """The tables, and the search indexes built once the rows are in."""
    sql = SCHEMA_SQL.read_text(encoding="utf-8")
    for name, value in (("schema", schema), ("dim", str(int(dimension))), ("m", str(int(config.hnsw_m))),
                        ("ef_construction", str(int(config.hnsw_ef_construction)))):
        sql = sql.replace("{" + name + "}", value)
    tables, _, indexes = sql.partition(AFTER_LOAD)
    return tables, indexes


@dataclass(frozen=True)
class ArticleRows:
    """What one article puts into the database."""

    article: Article
    chunks: list[ChunkRecord]
    chunk_texts: list[str]
    chunk_tokens: list[list[str]]
    sentences: list[SentenceRecord]
    sentence_texts: list[str]
    sentence_words: list[list[str]]


def _article_rows(article: Article, settings: Settings, embedder: Embedder) -> ArticleRows:
    """Chunks and sentences of one article exactly as the local index makes them."""
    units = embedded_units(article, settings.index, embedder)
    chunks, texts = units.chunks, units.chunk_texts
    sentences, sentence_texts = units.sentences, units.sentence_texts
    raw = [article.text[r.start : r.end] for r in sentences]
    return ArticleRows(
        article, chunks, texts, tokenize(texts) if texts else [], sentences, sentence_texts,
        [sorted(set(w)) for w in tokenize(raw)] if raw else [],
    )


class PostgresBackend:
    """The SearchBackend over PostgreSQL + pgvector (see rag/retrieval.py)."""

    name = "postgres"

    def __init__(self, config: PostgresConfig, settings: Settings, corpus_keys: Mapping[str, str], primary, replicas: list,
                 state: _State, summary: BuildSummary) -> None:
        self.config = config
        self.settings = settings
        self.summary = summary
        self._corpus_keys = dict(corpus_keys)
        self._primary = primary
        self._replicas = replicas
        self._state = state
        self._lock = threading.Lock()
        self._next_replica = 0
        self._df_cache: tuple[int, dict[str, int], int] | None = None
        self.replica_fallbacks = 0  # reads a lagging or failing replica passed to the primary (for tests, metrics)
        self.retried = 0  # reads re-run after a broken connection
        self.replica_reads = 0  # reads a replica answered
        self.bm25_capped = 0  # BM25 reads answered from the capped postings, proven exact
        self.bm25_uncapped = 0  # capped reads that could not be proven exact and read every posting

    @property
    def n_chunks(self) -> int:
        return self._state.n_chunks

    # --- opening ------------------------------------------------------------

    @classmethod
    def open(cls, corpus: Corpus, settings: Settings, embedder: Embedder, *, rebuild: bool = False,
             progress: bool = False, config: PostgresConfig | None = None) -> "PostgresBackend":
        """Connect, check the server, the extension and the schema version,
        and build or refresh the index when it is missing or stale."""
        config = config or PostgresConfig.from_settings(settings)
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
            import pgvector.psycopg  # noqa: F401
        except ImportError as e:
            raise StoreError(f"{type(e).__name__}: {e}", fix=INSTALL_HINT) from e
        _check_server(config.dsn, config)
        summary = _Builder(config, settings, embedder, corpus, progress).run(rebuild)
        return cls.connect(config, settings, {a.id: article_key(a) for a in corpus.articles}, summary)

    @classmethod
    def connect(cls, config: PostgresConfig, settings: Settings, corpus_keys: Mapping[str, str] | None = None,
                summary: BuildSummary | None = None) -> "PostgresBackend":
        """Attach to the index as it is, building nothing. corpus_keys (article
        id -> rag.indexer.article_key) is the corpus this process answers from;
        None takes the database's own (a reader that trusts whoever built it)."""
        primary = _make_pool(config.dsn, config, "primary")
        replicas = []
        for dsn in config.replicas:
            try:
                replicas.append(_make_pool(dsn, config, "replica"))
            except StoreError as e:
                # A replica down at start is not fatal: the primary serves the reads.
                log.warning("%s: reads go to the primary", e.reason)
        try:
            state = _read_state(primary, config)
            if corpus_keys is None:
                with primary.connection() as conn:
                    corpus_keys = dict(conn.execute(f"SELECT id, key FROM {config.schema}.articles").fetchall())
        except Exception as e:
            for pool in (primary, *replicas):
                pool.close()
            raise _store_error(e, config.dsn, "reading the index") from None
        summary = summary or BuildSummary(rebuilt=False, reason="connected", unchanged=tuple(corpus_keys), chunks=state.n_chunks)
        return cls(config, settings, corpus_keys, primary, replicas, state, summary)

    # --- reads --------------------------------------------------------------

    def _run(self, sql: str, params: Mapping[str, Any] | Sequence[Any], doing: str) -> tuple[int, list[tuple]]:
        """Rows of a read statement whose first column is meta.generation
        (every read statement selects it), from a replica that is up to date
        when one is listed, else from the primary. Returns (generation, rows)."""
        replica = self._pick_replica()
        if replica is not None:
            try:
                generation, rows = self._execute(replica, sql, params, doing)
                if generation >= self._state.generation:
                    with self._lock:
                        self.replica_reads += 1
                    return self._checked(generation, rows)
                log.warning("replica %s is behind (generation %d, the index is at %d): reading from the primary",
                            describe_dsn(replica.conninfo), generation, self._state.generation)
            except StoreError as e:
                log.warning("%s: reading from the primary", e.reason)
            with self._lock:
                self.replica_fallbacks += 1
        return self._checked(*self._execute(self._primary, sql, params, doing))

    def _pick_replica(self):
        if not self._replicas:
            return None
        with self._lock:
            pool = self._replicas[self._next_replica % len(self._replicas)]
            self._next_replica += 1
        return pool

    def _execute(self, pool, sql: str, params, doing: str) -> tuple[int, list[tuple]]:
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                with pool.connection(timeout=self.config.connect_timeout_s) as conn:
                    with conn.cursor(binary=True) as cur:
                        cur.execute(sql, params)
                        rows = cur.fetchall()
                if not rows:
                    raise StoreError(f"the index tables in schema {self.config.schema} are empty or gone",
                                     fix="run `rag index --backend postgres --rebuild`")
                return int(rows[0][0]), [r[1:] for r in rows if r[1] is not None]
            except StoreError:
                raise
            except Exception as e:
                if not _retryable(e) or attempt == attempts - 1:
                    raise _store_error(e, pool.conninfo, doing) from None
                with self._lock:
                    self.retried += 1
                log.warning("connection to %s broke while %s (%s): retrying", describe_dsn(pool.conninfo), doing, _first_line(e))
                pool.check()  # drop the other dead connections a server restart left in the pool
        raise AssertionError("unreachable")

    def _checked(self, generation: int, rows: list[tuple]) -> tuple[int, list[tuple]]:
        """Accept rows from a newer generation only when its articles are this corpus's."""
        if generation != self._state.generation:
            keys = dict(self._execute(self._primary, f"SELECT (SELECT generation FROM {self.config.schema}.meta), id, key "
                                      f"FROM {self.config.schema}.articles", (), "reading the articles")[1])
            if keys != self._corpus_keys:
                added = len(keys.keys() - self._corpus_keys.keys())
                removed = len(self._corpus_keys.keys() - keys.keys())
                changed = sum(1 for a in keys.keys() & self._corpus_keys.keys() if keys[a] != self._corpus_keys[a])
                raise StoreError(
                    f"the index in PostgreSQL ({self.config.schema}) was refreshed by another process from another "
                    f"version of the corpus ({added} articles added, {changed} changed, {removed} removed)",
                    fix="reload (restart the app, or RAG.load again) to answer from the new corpus")
            with self._lock:
                self._state = _read_state(self._primary, self.config)
        return generation, rows

    @classmethod
    def known_reads(cls, settings: Settings) -> dict:
        return {}  # no index folder to keep repaired texts in: every start reads the files again

    def search(self, query: str, vector: np.ndarray | None, k: int, articles: Sequence[str] | None, mode: str,
               settings: RetrievalSettings | None = None, trace: Trace = NO_TRACE) -> list[Scored]:
        settings = settings or self.settings.retrieval
        pool = max(int(k), settings.candidates)
        schema = self.config.schema
        params: dict[str, Any] = {"n": pool, "k": int(k)}
        filter_sql = ""
        if articles is not None:
            params["articles"] = list(dict.fromkeys(articles))
            filter_sql = "AND c.article_id = ANY(%(articles)s)"
        sides = []
        if mode in ("dense", "hybrid"):
            if vector is None:
                raise ValueError("dense and hybrid search need the query vector")
            params["v"] = np.asarray(vector, dtype=np.float32)
            sides.append(f"""d AS MATERIALIZED (
                SELECT c.row_id, -(c.embedding <#> %(v)s) AS s FROM {schema}.chunks c
                WHERE true {filter_sql} ORDER BY c.embedding <#> %(v)s LIMIT %(n)s)""")
        words: list[str] = []
        capped = False  # the BM25 side reads capped postings (see _capped_sql)
        if mode in ("bm25", "hybrid"):
            counts = Counter(tokenize([query])[0])
            words = list(counts)
            params["words"], params["qtf"] = words, [counts[w] for w in words]
            params["tsq"] = " | ".join(f"'{w}'" for w in words)
            # A filter restricts the chunks the capped lists were cut from, so
            # it would prove little: a filtered search reads every posting.
            # Below 10 x cap chunks a word's whole list is about as short as the cap.
            cap = self.config.bm25_cap
            capped = (bool(words) and self.config.fulltext == "bm25" and cap > 0 and not filter_sql
                      and self._state.n_chunks > 10 * cap)
            if capped:
                params["cap"], params["rescore"] = int(cap), max(int(self.config.bm25_rescore), pool)
        words_side = mode in ("bm25", "hybrid")
        if not sides and not words_side:
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "dense":
            fused = "SELECT d.row_id, d.s AS score, d.s AS ds, NULL::float8 AS bs, row_number() OVER (ORDER BY d.s DESC, d.row_id) AS tie FROM d"
        elif mode == "bm25":
            fused = "SELECT b.row_id, b.s AS score, NULL::float8 AS ds, b.s AS bs, row_number() OVER (ORDER BY b.s DESC, b.row_id) AS tie FROM b"
        else:
            fused = self._fusion_sql(params, settings)

        def statement(capped: bool) -> str:
            parts = sides if not words_side else [*sides, self._fulltext_sql(filter_sql, bool(words), capped)]
            return f"""WITH {', '.join(parts)},
            f AS ({fused})
            SELECT g.generation, c.id, c.article_id, c.position, c.start_char, c.end_char, c.n_tokens, c.embed_hash,
                   r.score, r.ds, r.bs, {"(SELECT ok FROM proof)" if capped else "true"}
            FROM (SELECT generation FROM {schema}.meta) g
            LEFT JOIN LATERAL (SELECT * FROM f ORDER BY f.score DESC, f.tie LIMIT %(k)s) r ON true
            LEFT JOIN {schema}.chunks c ON c.row_id = r.row_id
            ORDER BY r.score DESC NULLS LAST, r.tie"""

        with trace.stage("database search"):
            _, rows = self._run(statement(capped), params, "searching")
        if capped:
            exact = all(row[-1] for row in rows)
            with self._lock:
                if exact:
                    self.bm25_capped += 1
                else:
                    self.bm25_uncapped += 1
            if not exact and self.config.bm25_exact:
                with trace.stage("database search, every posting"):
                    _, rows = self._run(statement(False), params, "searching")
        return [
            Scored(ChunkRecord(cid, aid, pos, start, end, n_tokens, h), float(score),
                   None if ds is None else float(ds), None if bs is None else float(bs))
            for cid, aid, pos, start, end, n_tokens, h, score, ds, bs, _ in rows
        ]

    def _fulltext_sql(self, filter_sql: str, any_words: bool, capped: bool = False) -> str:
        schema = self.config.schema
        if not any_words:  # only stop words: nothing to match (as bm25s)
            return "b AS MATERIALIZED (SELECT NULL::integer AS row_id, NULL::float8 AS s WHERE false)"
        if self.config.fulltext == "ts_rank":
            # The tsquery's text form, like the stored tsvector's: the BM25
            # tokens as they are (letters, digits, _), OR-ed as BM25 does.
            return f"""b AS MATERIALIZED (
                SELECT c.row_id, ts_rank(c.tsv, %(tsq)s::tsquery)::float8 AS s
                FROM {schema}.chunks c
                WHERE c.tsv @@ %(tsq)s::tsquery {filter_sql}
                ORDER BY s DESC, c.row_id LIMIT %(n)s)"""
        chunk_join = f"JOIN {schema}.chunks c ON c.row_id = p.row_id" if filter_sql else ""
        # Lucene's BM25 as bm25s computes it: idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
        # tf part tf / (tf + k1 (1 - b + b dl / avgdl)); a repeated query word counts again.
        # Per query word once: its idf (times its count in the query) and the
        # two constants of the length norm, so a posting costs one division.
        c1 = BM25_K1 * (1 - BM25_B)
        words = f"""qw AS MATERIALIZED (
                SELECT v.word, q.qtf * ln(1 + ((SELECT n_chunks FROM {schema}.meta) - v.chunks + 0.5) / (v.chunks + 0.5)) AS idf,
                       (SELECT {BM25_K1 * BM25_B} / greatest(total_tokens::float8 / greatest(n_chunks, 1), 1e-9)
                        FROM {schema}.meta) AS c2
                FROM unnest(%(words)s::text[], %(qtf)s::int[]) AS q(word, qtf)
                JOIN {schema}.vocabulary v ON v.word = q.word)"""
        if capped:
            return words + ", " + self._capped_sql(c1)
        return words + f""",
            b AS MATERIALIZED (
                SELECT p.row_id, {_rounded("sum(qw.idf * p.tf / (p.tf + " + str(c1) + " + qw.c2 * p.n_terms))")} AS s
                FROM qw JOIN {schema}.postings p ON p.word = qw.word
                {chunk_join}
                WHERE true {filter_sql}
                GROUP BY p.row_id ORDER BY s DESC, p.row_id LIMIT %(n)s)"""

    def _capped_sql(self, c1: float) -> str:
        """BM25's top list from each query word's best postings (the threshold
        algorithm of Fagin et al., in SQL), with `proof.ok` true only when the
        list is provably the one every posting gives.

        top: a word's `cap` + 1 postings of highest impact (an index range
        read). A posting not read has an impact at most the least one read, so
        it adds at most `bound` = idf x that impact; impacts were computed with
        the full build's avgdl, and a refresh that raised avgdl since can raise
        a tf part by at most avgdl / impact_avgdl, hence `scale`. A chunk then
        scores at most `ub` (what it got from the lists it is in, plus the
        bounds of the others; a chunk in no list, the sum of all bounds).
        The `rescore` chunks of highest ub are scored exactly from all their
        postings; the list is exact when its last score beats every chunk left
        unscored (strictly, so an unread tie cannot reorder it).
        """
        schema = self.config.schema
        return f"""scale AS MATERIALIZED (
                SELECT greatest(1.0, total_tokens::float8 / greatest(n_chunks, 1) / impact_avgdl) * (1 + 1e-6) AS f
                FROM {schema}.meta),
            top AS MATERIALIZED (
                SELECT qw.word, t.row_id, t.impact, qw.idf * t.tf / (t.tf + {c1} + qw.c2 * t.n_terms) AS s
                FROM qw CROSS JOIN LATERAL (
                    SELECT p.row_id, p.tf, p.n_terms, p.impact FROM {schema}.postings p
                    WHERE p.word = qw.word ORDER BY p.impact DESC LIMIT %(cap)s + 1) t),
            wb AS MATERIALIZED (
                SELECT qw.word, CASE WHEN count(t.row_id) > %(cap)s
                                     THEN qw.idf * min(t.impact) * (SELECT f FROM scale) ELSE 0 END AS bound
                FROM qw LEFT JOIN top t ON t.word = qw.word GROUP BY qw.word, qw.idf),
            part AS MATERIALIZED (
                SELECT t.row_id, sum(t.s) + (SELECT sum(bound) FROM wb) - sum(wb.bound) AS ub
                FROM top t JOIN wb ON wb.word = t.word GROUP BY t.row_id),
            resc AS MATERIALIZED (SELECT row_id, ub FROM part ORDER BY ub DESC, row_id LIMIT %(rescore)s),
            b AS MATERIALIZED (
                SELECT p.row_id, {_rounded("sum(qw.idf * p.tf / (p.tf + " + str(c1) + " + qw.c2 * p.n_terms))")} AS s
                FROM resc JOIN {schema}.postings p ON p.row_id = resc.row_id JOIN qw ON qw.word = p.word
                GROUP BY p.row_id ORDER BY s DESC, p.row_id LIMIT %(n)s),
            proof AS MATERIALIZED (
                SELECT o.outside = 0 OR ((SELECT count(*) FROM b) = %(n)s AND (SELECT min(s) FROM b) > o.outside + {BM25_ROUND}) AS ok
                FROM (SELECT greatest((SELECT sum(bound) FROM wb),
                                      coalesce((SELECT ub FROM part ORDER BY ub DESC, row_id OFFSET %(rescore)s LIMIT 1), 0))
                             AS outside) o)"""

    def _fusion_sql(self, params: dict[str, Any], s: RetrievalSettings) -> str:
        """rag.fusion in SQL: weighted sum of min-max normalised scores (an id
        missing from a side scores 0 there), or RRF; ties keep the order in
        which ids were first seen (the dense list, then the BM25 one)."""
        ranked = """SELECT row_id, s, row_number() OVER (ORDER BY s DESC, row_id) AS rk,
                    coalesce((s - min(s) OVER ()) / nullif(max(s) OVER () - min(s) OVER (), 0), 1.0) AS norm FROM {side}"""
        if s.fusion == "rrf":
            params["rrf_k"] = float(s.rrf_k)
            score = "coalesce(1.0 / (%(rrf_k)s + dn.rk), 0) + coalesce(1.0 / (%(rrf_k)s + bn.rk), 0)"
        else:
            params["w"] = float(s.dense_weight)
            score = "%(w)s * coalesce(dn.norm, 0) + (1 - %(w)s) * coalesce(bn.norm, 0)"
        return f"""SELECT coalesce(dn.row_id, bn.row_id) AS row_id, ({score})::float8 AS score, dn.s AS ds, bn.s AS bs,
                       coalesce(dn.rk, (SELECT count(*) FROM d) + bn.rk) AS tie
                FROM ({ranked.format(side='d')}) dn FULL JOIN ({ranked.format(side='b')}) bn ON dn.row_id = bn.row_id"""

    def sentences_within(self, spans: Sequence[tuple[str, int, int]]) -> SentenceBatch:
        dimension = self._dimension()
        if not spans:
            return SentenceBatch([], np.zeros((0, dimension), dtype=np.float32))
        schema = self.config.schema
        sql = f"""SELECT g.generation, r.article_id, r.start_char, r.end_char, r.embed_hash, r.embedding
            FROM (SELECT generation FROM {schema}.meta) g
            LEFT JOIN LATERAL (
                SELECT s.article_id, s.start_char, s.end_char, s.embed_hash, s.embedding, q.ord
                FROM unnest(%(a)s::text[], %(lo)s::int[], %(hi)s::int[]) WITH ORDINALITY AS q(article_id, lo, hi, ord)
                JOIN {schema}.sentences s ON s.article_id = q.article_id AND s.start_char >= q.lo AND s.end_char <= q.hi
            ) r ON true
            ORDER BY r.ord, r.start_char"""
        params = {"a": [a for a, _, _ in spans], "lo": [int(lo) for _, lo, _ in spans], "hi": [int(hi) for _, _, hi in spans]}
        _, rows = self._run(sql, params, "reading sentences")
        seen: set[tuple[str, int]] = set()
        records, vectors = [], []
        for article_id, start, end, embed_hash, embedding in rows:
            if (article_id, start) in seen:
                continue  # a sentence inside two overlapping spans is listed once, at the first
            seen.add((article_id, start))
            records.append(SentenceRecord(article_id, start, end, embed_hash))
            vectors.append(_array(embedding))
        matrix = np.vstack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)
        return SentenceBatch(records, matrix)

    def _dimension(self) -> int:
        return self._state.dimension

    def sentence_df(self) -> tuple[Mapping[str, int], int]:
        schema = self.config.schema
        cached = self._df_cache
        sql = f"""SELECT g.generation, g.n_sentences, d.word, d.sentences
            FROM (SELECT generation, n_sentences FROM {schema}.meta) g LEFT JOIN {schema}.sentence_df d ON true"""
        if cached is not None and cached[0] == self._state.generation:
            return cached[1], cached[2]
        generation, rows = self._run(sql, (), "reading the sentence statistics")
        n = int(rows[0][0])  # n_sentences: the LEFT JOIN gives at least the meta row
        df = {word: int(count) for _, word, count in rows if word is not None}
        self._df_cache = (generation, df, n)
        return df, n

    def knows(self, word: str) -> bool:
        tokens = sorted(set(tokenize([word])[0]))
        if not tokens:
            return True  # a stop word names nothing: as the local backend
        schema = self.config.schema
        sql = f"""SELECT g.generation, (SELECT count(*) FROM {schema}.vocabulary v WHERE v.word = ANY(%(w)s))
            FROM (SELECT generation FROM {schema}.meta) g"""
        _, rows = self._run(sql, {"w": tokens}, "checking a word")
        return bool(rows) and int(rows[0][0]) == len(tokens)

    def close(self) -> None:
        for pool in [self._primary, *self._replicas]:
            try:
                pool.close()
            except Exception:  # closing a pool to a dead server: nothing left to release
                pass

    def __enter__(self) -> "PostgresBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- connections ----------------------------------------------------------------


def _connect(dsn: str, config: PostgresConfig, **kwargs):
    import psycopg

    try:
        return psycopg.connect(dsn, connect_timeout=max(1, int(round(config.connect_timeout_s))),
                               application_name="rag", **kwargs)
    except psycopg.Error as e:
        raise _store_error(e, dsn, "connecting") from None


def _check_server(dsn: str, config: PostgresConfig) -> None:
    """Reach the primary and make sure pgvector is there (creating it when allowed)."""
    import psycopg

    with _connect(dsn, config, autocommit=True) as conn:
        where = describe_dsn(dsn)
        installed = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        if installed is None:
            available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
            if available is None:
                raise StoreError(f"PostgreSQL at {where} has no pgvector extension installed",
                                 fix="install pgvector on the server (managed services: enable the 'vector' extension)")
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as e:
                raise StoreError(f"the pgvector extension is not enabled in {where} and this user cannot enable it ({_first_line(e)})",
                                 fix="run `CREATE EXTENSION vector;` in that database as its owner or a superuser") from None


def _make_pool(dsn: str, config: PostgresConfig, role: str):
    from pgvector.psycopg import register_vector
    from psycopg_pool import ConnectionPool

    # Setting up a connection: the vector type, the HNSW width, the timeout.
    # Integers from a validated config, so formatting them in is safe.
    settings_sql = (f"SET hnsw.ef_search = {int(config.ef_search)}; "
                    "SET hnsw.iterative_scan = strict_order; "  # a filtered k-NN keeps looking until it has k rows
                    f"SET statement_timeout = {int(config.statement_timeout_ms)}")

    def configure(conn) -> None:
        register_vector(conn)
        conn.execute(settings_sql)

    _connect(dsn, config).close()  # a clear error now, rather than a pool timing out later
    pool = ConnectionPool(
        dsn, min_size=config.pool_min, max_size=config.pool_max, open=False, configure=configure,
        kwargs={"autocommit": True, "connect_timeout": max(1, int(round(config.connect_timeout_s))),
                "application_name": f"rag-{role}"},
        timeout=config.connect_timeout_s, reconnect_timeout=max(config.connect_timeout_s * 6, 30.0),
    )
    try:
        pool.open(wait=True, timeout=config.connect_timeout_s * 2)
    except Exception as e:
        pool.close()
        raise _store_error(e, dsn, "opening the connection pool") from None
    return pool


def _read_state(pool, config: PostgresConfig) -> _State:
    with pool.connection() as conn:
        row = conn.execute(f"SELECT generation, n_chunks, dimension FROM {config.schema}.meta").fetchone()
    return _State(int(row[0]), int(row[1]), int(row[2]))


# --- building -------------------------------------------------------------------


class _Builder:
    """Brings the schema up to date with the corpus, in one transaction."""

    def __init__(self, config: PostgresConfig, settings: Settings, embedder: Embedder, corpus: Corpus, progress: bool) -> None:
        self.config, self.settings, self.embedder, self.corpus, self.progress = config, settings, embedder, corpus, progress
        self.schema = config.schema

    def run(self, rebuild: bool) -> BuildSummary:
        import psycopg

        started = time.perf_counter()
        conn = _connect(self.config.dsn, self.config)
        try:
            from pgvector.psycopg import register_vector

            # Held for the whole refresh (plan, embed, write) and released by
            # the server when this session ends, even by a kill.
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"rag-index:{self.schema}",))
            conn.commit()
            meta = self._meta(conn)
            if meta is not None and meta["schema_version"] != SCHEMA_VERSION and not rebuild:
                raise StoreError(
                    f"the index in PostgreSQL ({describe_dsn(self.config.dsn)}, schema {self.schema}) has schema version "
                    f"{meta['schema_version']}; this version of rag reads version {SCHEMA_VERSION}",
                    fix="run `rag index --backend postgres --rebuild` (every server must then run this version), "
                        "or use another --pg-schema")
            if meta is not None and meta["schema_version"] == SCHEMA_VERSION:
                register_vector(conn)
            stored = self._articles(conn) if meta is not None and meta["schema_version"] == SCHEMA_VERSION else {}
            reason = "rebuild requested" if rebuild else self._staleness(meta, stored)
            if reason is None:
                conn.rollback()
                return BuildSummary(rebuilt=False, reason="up to date", unchanged=tuple(stored), chunks=meta["n_chunks"])
            return self._refresh(conn, meta, stored, reason, rebuild, started)
        except psycopg.Error as e:
            raise _store_error(e, self.config.dsn, "building the index") from None
        finally:
            conn.close()  # also releases the advisory lock

    def _meta(self, conn) -> dict[str, Any] | None:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.meta",)).fetchone()[0]
        if exists is None:
            others = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE n.nspname = %s", (self.schema,)).fetchone()[0]
            conn.commit()
            if others:
                # Building drops and re-creates the schema: never one holding other data.
                raise StoreError(f"schema {self.schema} in {describe_dsn(self.config.dsn)} holds {others} tables or "
                                 "indexes that are not a rag index", fix="choose another schema (--pg-schema)")
            return None
        cur = conn.execute(f"SELECT * FROM {self.schema}.meta")
        row = cur.fetchone()
        conn.commit()
        if row is None:
            return None
        return dict(zip([c.name for c in cur.description], row))

    def _articles(self, conn) -> dict[str, str]:
        rows = conn.execute(f"SELECT id, key FROM {self.schema}.articles").fetchall()
        conn.commit()
        return dict(rows)

    def _staleness(self, meta: dict[str, Any] | None, stored: dict[str, str]) -> str | None:
        """Why the database cannot serve this corpus and settings; None if it can (rag.indexer.staleness's rules)."""
        if meta is None:
            return "no index yet"
        e, s = self.embedder, self.settings
        if meta["model"] != e.name or meta["dimension"] != e.dimension:
            return f"index was built with model {meta['model']} ({meta['dimension']} dims), settings use {e.name} ({e.dimension} dims)"
        if meta["sparse_tokenizer"] != TOKENIZER_ID:
            return f"BM25 tokenization changed from {meta['sparse_tokenizer']} to {TOKENIZER_ID}"
        if meta["repair"] != s.index.repair:
            return f"text repair changed from {'on' if meta['repair'] else 'off'} to {'on' if s.index.repair else 'off'}"
        if meta["chunking"] != s.index.chunking():
            return f"chunking changed from {meta['chunking']} to {s.index.chunking()}"
        if stored != {a.id: article_key(a) for a in self.corpus.articles}:
            return "corpus changed"
        return None

    def _refresh(self, conn, meta: dict[str, Any] | None, stored: dict[str, str], reason: str, rebuild: bool,
                 started: float) -> BuildSummary:
        embedder = self.embedder
        same_shape = (meta is not None and meta["schema_version"] == SCHEMA_VERSION and meta["dimension"] == embedder.dimension)
        same_model = same_shape and meta["model"] == embedder.name
        # Everything is rewritten when the chunks' shape changed; else only
        # what changed. Vectors are reused by content hash either way.
        rewrite_all = (rebuild or not same_shape or meta["chunking"] != self.settings.index.chunking()
                       or meta["repair"] != self.settings.index.repair or meta["sparse_tokenizer"] != TOKENIZER_ID
                       or meta["model"] != embedder.name)
        current = {a.id: article_key(a) for a in self.corpus.articles}
        to_write = [a for a in self.corpus.articles if rewrite_all or stored.get(a.id) != current[a.id]]
        to_delete = sorted(stored) if rewrite_all else sorted(a for a in stored if current.get(a) != stored[a])
        rows = [_article_rows(a, self.settings, embedder) for a in to_write]

        chunk_records = [c for r in rows for c in r.chunks]
        sentence_records = [s for r in rows for s in r.sentences]
        reusable: dict[str, np.ndarray] = {}
        if meta is not None and meta["schema_version"] == SCHEMA_VERSION and not rebuild:
            wanted = list({x.embed_hash for x in chunk_records} | {x.embed_hash for x in sentence_records})
            reusable = self._stored_vectors(conn, wanted, live=same_model)
        chunk_vectors, embedded = self._embed([c.embed_hash for c in chunk_records], [t for r in rows for t in r.chunk_texts],
                                              reusable, "chunks")
        sentence_vectors, sentences_embedded = self._embed([s.embed_hash for s in sentence_records],
                                                           [t for r in rows for t in r.sentence_texts], reusable, "sentences")
        write_started = time.perf_counter()
        full = rewrite_all or meta is None
        n_chunks = self.write(conn, meta, rows, chunk_vectors, sentence_vectors, [] if full else to_delete, full)
        log.info("postgres: wrote %d articles in %.1f s", len(to_write), time.perf_counter() - write_started)
        old = stored
        return BuildSummary(
            rebuilt=True,
            reason=reason,
            added=tuple(a for a in current if a not in old),
            changed=tuple(a for a in current if a in old and old[a] != current[a]),
            removed=tuple(a for a in old if a not in current),
            unchanged=tuple(a for a in current if old.get(a) == current[a]),
            chunks=int(n_chunks),
            embedded=embedded,
            reused=int(n_chunks) - embedded,  # as the local backend counts: every chunk not embedded now
            sentences_embedded=sentences_embedded,
            seconds=time.perf_counter() - started,
            warnings=() if same_model or meta is None else (f"{reason}: the old model's vectors cannot be reused",),
        )

    def write(self, conn, meta: dict[str, Any] | None, rows: list[ArticleRows], chunk_vectors: np.ndarray,
              sentence_vectors: np.ndarray, to_delete: list[str], full: bool) -> int:
        """Write one refresh in one transaction; returns the chunks now indexed.

        full: a whole new index, loaded into a fresh schema `<schema>__next`
        with its HNSW and GIN indexes built after the load (much faster than
        growing them row by row), then swapped in by renaming. Readers go on
        reading the old schema meanwhile; the swap waits only for the reads
        running at that moment. Otherwise the changed articles are deleted
        and inserted in place (MVCC: readers see the old rows until commit).
        A second writer is already excluded by the advisory lock.
        """
        from pgvector.psycopg import register_vector

        schema, embedder, settings = self.schema, self.embedder, self.settings
        target = f"{schema}__next" if full else schema
        with conn.transaction():
            if full:
                tables, indexes = _load_schema_sql(target, embedder.dimension, self.config)
                conn.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
                conn.execute(tables)
                register_vector(conn)
                lengths = [len(t) for r in rows for t in r.chunk_tokens]
                impact_avgdl = max(sum(lengths) / max(len(lengths), 1), 1e-9)
                conn.execute(f"""INSERT INTO {target}.meta (schema_version, generation, package_version, model, dimension,
                    chunking, sparse_tokenizer, repair, n_chunks, n_sentences, total_tokens, impact_avgdl)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, %s)""",
                             (SCHEMA_VERSION, int(meta.get("generation") or 0) if meta else 0, __version__, embedder.name,
                              embedder.dimension, json.dumps(settings.index.chunking()), TOKENIZER_ID, settings.index.repair,
                              impact_avgdl))
            self._keep_dropped(conn, target, meta, to_delete, full)
            self._delete(conn, target, to_delete)
            self._insert(conn, target, rows, chunk_vectors, sentence_vectors)
            self._trim_dropped(conn, target)
            conn.execute(f"""UPDATE {target}.meta SET generation = generation + 1, package_version = %s, model = %s,
                    chunking = %s, sparse_tokenizer = %s, repair = %s,
                    n_chunks = (SELECT count(*) FROM {target}.chunks),
                    n_sentences = (SELECT count(*) FROM {target}.sentences),
                    total_tokens = (SELECT coalesce(sum(n_terms), 0) FROM {target}.chunks), updated = now()""",
                         (__version__, embedder.name, json.dumps(settings.index.chunking()), TOKENIZER_ID, settings.index.repair))
            if full:
                # Parallel HNSW build: maintenance_work_mem must hold the graph
                # or pgvector falls back to a much slower on-disk build.
                # At least 1 GB; a server set higher (a big corpus's graph) keeps its own.
                conn.execute("SELECT set_config('maintenance_work_mem', '1GB', true) "
                             "WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('1GB')")
                conn.execute(indexes)
                conn.execute(f"ANALYZE {target}.meta, {target}.chunks, {target}.postings, {target}.vocabulary, {target}.sentences")
                # The swap: from the first rename to the commit (milliseconds)
                # it holds the old tables exclusively, so a read arriving then
                # waits for the new index rather than seeing a mix.
                _before_commit(conn)
                conn.execute(f"DROP SCHEMA IF EXISTS {schema}__old CASCADE")
                if self._schema_exists(conn):
                    conn.execute(f"ALTER SCHEMA {schema} RENAME TO {schema}__old")
                conn.execute(f"ALTER SCHEMA {target} RENAME TO {schema}")
                conn.execute(f"DROP SCHEMA IF EXISTS {schema}__old CASCADE")
            else:
                _before_commit(conn)
            n_chunks = conn.execute(f"SELECT n_chunks FROM {schema}.meta").fetchone()[0]
        if full:
            # Sets the visibility map, so BM25's postings are read from their
            # index alone (at 10k chunks a query fetched every posting from
            # the table before). VACUUM cannot run inside the transaction.
            conn.autocommit = True
            try:
                conn.execute(f"VACUUM (ANALYZE) {schema}.postings, {schema}.chunks, {schema}.vocabulary")
            finally:
                conn.autocommit = False
        else:
            conn.execute(f"ANALYZE {schema}.meta, {schema}.chunks, {schema}.postings, {schema}.vocabulary, {schema}.sentences")
            conn.commit()
        return int(n_chunks)

    def _schema_exists(self, conn) -> bool:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone() is not None

    def _stored_vectors(self, conn, hashes: list[str], live: bool) -> dict[str, np.ndarray]:
        """Vectors of these content hashes for this model: from the index's
        rows (`live`: the index holds this model's vectors) and from the
        vectors earlier refreshes dropped."""
        if not hashes:
            return {}
        schema = self.schema
        parts = []
        if live:
            parts += [f"SELECT embed_hash, embedding FROM {schema}.chunks WHERE embed_hash = ANY(%(h)s)",
                      f"SELECT embed_hash, embedding FROM {schema}.sentences WHERE embed_hash = ANY(%(h)s)"]
        if conn.execute("SELECT to_regclass(%s)", (f"{schema}.dropped_vectors",)).fetchone()[0] is not None:
            parts.append(f"SELECT embed_hash, embedding FROM {schema}.dropped_vectors WHERE model = %(m)s AND embed_hash = ANY(%(h)s)")
        found: dict[str, np.ndarray] = {}
        if parts:
            with conn.cursor(binary=True) as cur:
                cur.execute(" UNION ALL ".join(parts), {"h": hashes, "m": self.embedder.name})
                rows = [(h, _array(v)) for h, v in cur.fetchall()]
            found = {h: v for h, v in rows if v.shape == (self.embedder.dimension,)}
        conn.commit()
        return found

    def _keep_dropped(self, conn, target: str, meta: dict[str, Any] | None, to_delete: list[str], full: bool) -> None:
        """Keep the vectors this refresh drops (rag/embedcache.py's cache, in a
        table): an article removed and put back, a chunk size tried and
        abandoned, a model switched and back then embed nothing. Newest first,
        up to Settings.embedding_cache_size, keyed by model and content hash;
        the table is created on first use (a cache: readers never need it)."""
        capacity = int(self.settings.index.embedding_cache_size)
        schema = self.schema
        conn.execute(f"""CREATE TABLE IF NOT EXISTS {target}.dropped_vectors (
            model text NOT NULL, embed_hash text NOT NULL, embedding vector NOT NULL, generation bigint NOT NULL,
            PRIMARY KEY (model, embed_hash))""")
        if capacity <= 0 or meta is None or meta["schema_version"] != SCHEMA_VERSION:
            conn.execute(f"TRUNCATE {target}.dropped_vectors")
            return
        params = {"m": meta["model"], "g": int(meta["generation"]), "a": to_delete, "new": self.embedder.name}
        if full:  # the old schema's rows all go, and its cache with them: copy both into the new schema
            sources = [f"SELECT %(m)s, embed_hash, embedding, %(g)s, 0 FROM {schema}.chunks",
                       f"SELECT %(m)s, embed_hash, embedding, %(g)s, 0 FROM {schema}.sentences",
                       f"SELECT model, embed_hash, embedding, generation, 1 FROM {schema}.dropped_vectors"]
            if conn.execute("SELECT to_regclass(%s)", (f"{schema}.dropped_vectors",)).fetchone()[0] is None:
                sources.pop()
        else:  # only the deleted articles' rows go
            sources = [f"SELECT %(m)s, embed_hash, embedding, %(g)s, 0 FROM {schema}.chunks WHERE article_id = ANY(%(a)s)",
                       f"SELECT %(m)s, embed_hash, embedding, %(g)s, 0 FROM {schema}.sentences WHERE article_id = ANY(%(a)s)"]
        conn.execute(f"""INSERT INTO {target}.dropped_vectors (model, embed_hash, embedding, generation)
            SELECT DISTINCT ON (model, embed_hash) model, embed_hash, embedding, generation
            FROM ({' UNION ALL '.join(sources)}) x(model, embed_hash, embedding, generation, older)
            ORDER BY model, embed_hash, older
            ON CONFLICT (model, embed_hash) DO UPDATE SET embedding = excluded.embedding, generation = excluded.generation""",
                     params)

    def _trim_dropped(self, conn, target: str) -> None:
        """What the index holds again leaves the cache; then the newest `capacity` stay."""
        capacity = int(self.settings.index.embedding_cache_size)
        conn.execute(f"""DELETE FROM {target}.dropped_vectors d WHERE d.model = %(m)s AND (
            EXISTS (SELECT 1 FROM {target}.chunks c WHERE c.embed_hash = d.embed_hash)
            OR EXISTS (SELECT 1 FROM {target}.sentences s WHERE s.embed_hash = d.embed_hash))""", {"m": self.embedder.name})
        conn.execute(f"""DELETE FROM {target}.dropped_vectors WHERE (model, embed_hash) IN (
            SELECT model, embed_hash FROM {target}.dropped_vectors ORDER BY generation DESC, model, embed_hash OFFSET %(c)s)""",
                     {"c": max(capacity, 0)})

    def _embed(self, hashes: list[str], texts: list[str], reusable: dict[str, np.ndarray], what: str) -> tuple[np.ndarray, int]:
        vectors = np.zeros((len(hashes), self.embedder.dimension), dtype=np.float32)
        missing = []
        for i, h in enumerate(hashes):
            if h in reusable:
                vectors[i] = reusable[h]
            else:
                missing.append(i)
        if missing:
            log.info("embedding %d of %d %s", len(missing), len(hashes), what)
            vectors[missing] = self.embedder.embed([texts[i] for i in missing], progress=self.progress)
        return vectors, len(missing)

    def _delete(self, conn, schema: str, article_ids: list[str]) -> None:
        """Remove articles (their chunks, postings and sentences cascade) and
        take their words out of the two word tables."""
        if not article_ids:
            return
        conn.execute(f"""UPDATE {schema}.vocabulary v SET chunks = v.chunks - d.n
            FROM (SELECT p.word, count(*) AS n FROM {schema}.postings p JOIN {schema}.chunks c ON c.row_id = p.row_id
                  WHERE c.article_id = ANY(%(a)s) GROUP BY p.word) d WHERE v.word = d.word""", {"a": article_ids})
        conn.execute(f"""UPDATE {schema}.sentence_df f SET sentences = f.sentences - d.n
            FROM (SELECT w AS word, count(*) AS n FROM {schema}.sentences s, unnest(s.words) AS w
                  WHERE s.article_id = ANY(%(a)s) GROUP BY w) d WHERE f.word = d.word""", {"a": article_ids})
        conn.execute(f"DELETE FROM {schema}.vocabulary WHERE chunks <= 0")
        conn.execute(f"DELETE FROM {schema}.sentence_df WHERE sentences <= 0")
        conn.execute(f"DELETE FROM {schema}.articles WHERE id = ANY(%(a)s)", {"a": article_ids})

    def _insert(self, conn, schema: str, rows: list[ArticleRows], chunk_vectors: np.ndarray, sentence_vectors: np.ndarray) -> None:
        if not rows:
            return
        next_row = conn.execute(f"SELECT coalesce(max(row_id), 0) + 1 FROM {schema}.chunks").fetchone()[0]
        # A refresh keeps the full build's avgdl for the impacts, so a word's
        # postings stay comparable; _capped_sql allows for the drift.
        impact_c2 = BM25_K1 * BM25_B / conn.execute(f"SELECT impact_avgdl FROM {schema}.meta").fetchone()[0]
        impact_c1 = BM25_K1 * (1 - BM25_B)
        vocabulary: Counter[str] = Counter()
        sentence_df: Counter[str] = Counter()
        with conn.cursor() as cur:
            with cur.copy(f"COPY {schema}.articles (id, key, source, n_chunks) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((r.article.id, article_key(r.article), r.article.source, len(r.chunks)))
            i = 0
            with cur.copy(f"COPY {schema}.chunks (row_id, id, article_id, position, start_char, end_char, n_tokens, "
                          "embed_hash, n_terms, embedding, terms) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "text", "text", "int4", "int4", "int4", "int4", "text", "int4", "vector", "text"])
                for r in rows:
                    for c, tokens in zip(r.chunks, r.chunk_tokens):
                        copy.write_row((next_row + i, c.id, c.article_id, c.position, c.start, c.end, c.n_tokens, c.embed_hash,
                                        len(tokens), chunk_vectors[i], _tsvector_text(tokens)))
                        i += 1
            i = 0
            with cur.copy(f"COPY {schema}.postings (word, row_id, tf, n_terms, impact) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "int4", "int4", "int4", "float4"])
                for r in rows:
                    for tokens in r.chunk_tokens:
                        counts = Counter(tokens)
                        vocabulary.update(counts.keys())
                        for word, tf in counts.items():
                            copy.write_row((word, next_row + i, tf, len(tokens), tf / (tf + impact_c1 + impact_c2 * len(tokens))))
                        i += 1
            i = 0
            with cur.copy(f"COPY {schema}.sentences (article_id, start_char, end_char, embed_hash, words, embedding) "
                          "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "int4", "int4", "text", "text[]", "vector"])
                for r in rows:
                    for s, words in zip(r.sentences, r.sentence_words):
                        sentence_df.update(words)
                        copy.write_row((s.article_id, s.start, s.end, s.embed_hash, words, sentence_vectors[i]))
                        i += 1
            for table, column, counts in (("vocabulary", "chunks", vocabulary), ("sentence_df", "sentences", sentence_df)):
                words = list(counts)
                cur.execute(f"""INSERT INTO {schema}.{table} (word, {column})
                    SELECT * FROM unnest(%s::text[], %s::int[])
                    ON CONFLICT (word) DO UPDATE SET {column} = {table}.{column} + excluded.{column}""",
                            (words, [counts[w] for w in words]))


def _rounded(score_sql: str) -> str:
    # BM25 rounded to BM25_ROUND: the same sum taken in another order (the
    # capped read, the full one) differs in its last bit, and equal chunks
    # would then swap places; rounded, a tie is a tie and row_id orders it.
    return f"round(({score_sql})::numeric, {BM25_DIGITS})::float8"


def _array(value) -> np.ndarray:
    """A vector column's value (pgvector's Vector in binary results) as float32."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _tsvector_text(tokens: list[str]) -> str:
    # The tsvector's text form, built here so PostgreSQL's parser cannot split
    # a token differently: 'word':1,5 'other':2 (positions from 1).
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(tokens[:16383], start=1):  # tsvector positions stop at 16383
        positions.setdefault(t, []).append(i)
    return " ".join(f"'{w}':{','.join(map(str, p[:256]))}" for w, p in positions.items())  # at most 256 positions a word


def load_rows(config: PostgresConfig, settings: Settings, model: str, dimension: int, rows: list[ArticleRows],
              chunk_vectors: np.ndarray, sentence_vectors: np.ndarray) -> int:
    """A whole index from rows and vectors made elsewhere (a bulk loader, the
    scale benchmark's derived vectors), through the same transactional full
    build as open(). Returns the number of chunks indexed."""
    import psycopg
    from types import SimpleNamespace

    _check_server(config.dsn, config)
    builder = _Builder(config, settings, SimpleNamespace(name=model, dimension=dimension), None, False)
    conn = _connect(config.dsn, config)
    try:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"rag-index:{config.schema}",))
        conn.commit()
        meta = builder._meta(conn)
        return builder.write(conn, meta, rows, chunk_vectors, sentence_vectors, [], full=True)
    except psycopg.Error as e:
        raise _store_error(e, config.dsn, "loading the index") from None
    finally:
        conn.close()


def _before_commit(conn) -> None:
    """The last moment before a refresh becomes visible (the commit, or a full
    build's schema swap): the kill test stops a build here."""
