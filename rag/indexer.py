"""Build or refresh the index for a corpus, re-embedding only what changed.

Chunks are keyed by the hash of the text that is embedded (model name,
article context and chunk text), so an unchanged chunk keeps its vector even
when its neighbours, its article or the chunking around it changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .version import __version__
from .evidence import sentence_document_frequency
from .chunking import chunk_article
from .dense import DenseIndex, IndexSpec, choose_spec
from .embedcache import EmbeddingCache
from .embedding import Embedder, sentence_embedder_for
from .errors import StoreError
from .ingest import Corpus, code_fingerprint
from .sentences import mask_footnotes, split_sentences
from .settings import IndexSettings
from .sparse import TOKENIZER_ID, SparseIndex
from .store import IndexStore, Manifest, StoredIndex
from .types import Article, ChunkRecord, SentenceRecord

log = logging.getLogger("rag")


@dataclass(frozen=True)
class BuildSummary:
    """What a refresh did, for the user and for tests."""

    rebuilt: bool  # False when the index was already up to date
    reason: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    chunks: int = 0
    embedded: int = 0  # chunks whose vectors were computed now
    reused: int = 0  # chunks whose vectors came from the previous index
    sentences_embedded: int = 0  # sentences (for answer selection) embedded now
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        if not self.rebuilt:
            return f"index is up to date ({self.chunks} chunks from {len(self.unchanged)} articles)"
        parts = [f"{len(v)} {k}" for k, v in (("added", self.added), ("changed", self.changed), ("removed", self.removed), ("unchanged", self.unchanged)) if v]
        return (
            f"indexed {self.chunks} chunks from {len(self.added) + len(self.changed) + len(self.unchanged)} articles "
            f"({', '.join(parts)}); embedded {self.embedded}, reused {self.reused}, in {self.seconds:.1f} s"
        )


# The context header shares the model's 256 word pieces with the chunk: a
# runaway title from a metadata file must not crowd the chunk out.
MAX_HEADER_CHARS = 200


def context_text(article: Article, text: str) -> str:
    """What is embedded and matched for a chunk: its article's title and
    publisher (questions often name the source), then the chunk's own text
    with footnote markers blanked."""
    head = article.title if not article.publisher else f"{article.title} ({article.publisher})"
    if len(head) > MAX_HEADER_CHARS:
        head = head[: MAX_HEADER_CHARS - 1].rstrip() + "…"
    return f"{head}\n\n{mask_footnotes(text)}"


def article_key(article: Article) -> str:
    """Everything an article's chunks and their embedded text depend on."""
    payload = json.dumps([article.text, article.title, article.publisher], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _embed_hash(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


def _vectors_by_hash(stored: StoredIndex) -> dict[str, np.ndarray]:
    vectors = {c.embed_hash: stored.vectors[i] for i, c in enumerate(stored.chunks)}
    vectors.update((s.embed_hash, stored.sentence_vectors[i]) for i, s in enumerate(stored.sentences))
    return vectors


@dataclass
class _Pending:
    """One kind of record (chunks or sentences) on its way to vectors."""

    what: str
    embedder: Embedder  # what embeds this kind (sentences may have their own)
    vectors: np.ndarray  # reused vectors filled in; the rest still zero
    missing: list[int]  # rows still to embed
    texts: list[str]
    embedded: int = 0


def _pending(embedder: Embedder, records: list, texts: list[str], reusable: dict[str, np.ndarray], what: str) -> _Pending:
    """Vectors for `records` from `reusable`, and the rows whose hash is not there."""
    vectors = np.zeros((len(records), embedder.dimension), dtype=np.float32)
    missing = []
    for i, record in enumerate(records):
        if record.embed_hash in reusable:
            vectors[i] = reusable[record.embed_hash]
        else:
            missing.append(i)
    return _Pending(what, embedder, vectors, missing, texts)


def _embed(p: _Pending, n: int | None = None, progress: bool = False) -> float:
    """Embed the next `n` (default: all) missing rows of `p`; the seconds it took."""
    rows, p.missing = (p.missing, []) if n is None else (p.missing[:n], p.missing[n:])
    if not rows:
        return 0.0
    started = time.perf_counter()
    p.vectors[rows] = p.embedder.embed([p.texts[i] for i in rows], progress=progress)
    p.embedded += len(rows)
    return time.perf_counter() - started


# Texts embedded first to measure the rate (about 1 s for MiniLM on 2 cores),
# and the estimate above which the user is warned before the rest: until the
# index is built, neither the CLI nor the app answers (issue 12). Builds of
# fewer than PROBE_ABOVE texts skip the probe and its extra batches: at the
# slowest rate measured here (20 texts/s, float model, load 8 on 2 cores) they
# take under a minute anyway.
PROBE_TEXTS = 64
PROBE_ABOVE = 1000
LONG_BUILD_SECONDS = 60.0


def _embed_all(pending: list[_Pending], progress: bool) -> None:
    """Embed every missing row, warning first with an estimate when that
    will take long. The rate is measured on this machine and model for each
    kind (a sentence embeds faster than a chunk), by embedding a first few."""
    if sum(len(p.missing) for p in pending) > PROBE_ABOVE:
        _warn_if_long(pending)
    _embed_together(pending, progress)


def _warn_if_long(pending: list[_Pending]) -> None:
    estimate = 0.0
    firsts: dict[int, _Pending] = {}
    for p in pending:
        if p.missing:
            firsts.setdefault(id(p.embedder), p)
    for first in firsts.values():
        _embed(first, 1)  # loads each model (seconds), which must not count in the rate
    for p in pending:
        total = p.embedded + len(p.missing)
        if total:
            log.info("embedding %d of %d %s", total, len(p.vectors), p.what)
        probe = min(PROBE_TEXTS, len(p.missing))
        if probe:
            estimate += _embed(p, probe) / probe * total
    if estimate > LONG_BUILD_SECONDS:
        counts = " and ".join(f"{p.embedded + len(p.missing):,} {p.what}" for p in pending if p.embedded)
        log.warning(
            "embedding %s takes about %s at the rate measured now; questions are answered once it is done "
            "(interrupting is safe: the previous index stays)",
            counts,
            _duration(estimate),
        )


def _embed_together(pending: list[_Pending], progress: bool) -> None:
    """Embed the missing rows of every kind in one call per embedder, so that
    it plans batches over chunks and sentences together: short sentences fill
    batches of their own instead of padding out a chunk batch's tail."""
    for embedder in {id(p.embedder): p.embedder for p in pending}.values():
        rows = [(p, i) for p in pending if p.embedder is embedder for i in p.missing]
        if rows:
            vectors = embedder.embed([p.texts[i] for p, i in rows], progress=progress)
            for (p, i), v in zip(rows, vectors):
                p.vectors[i] = v
    for p in pending:
        p.embedded += len(p.missing)
        p.missing = []


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 2:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.1f} hours"


@dataclass(frozen=True)
class ArticleUnits:
    """What an article puts into an index: its chunks and indexed sentences,
    with the exact texts that are embedded (each record's embed_hash names one)."""

    chunks: list[ChunkRecord]
    chunk_texts: list[str]  # title and publisher as context, then the chunk
    sentences: list[SentenceRecord]
    sentence_texts: list[str]  # the sentence with footnote markers blanked


def embedded_units(
    article: Article, settings: IndexSettings, embedder: Embedder, sentence_embedder: Embedder | None = None
) -> ArticleUnits:
    """The chunks and sentences of one article, as every backend indexes them;
    sentence hashes name `sentence_embedder`'s model (default: `embedder`)."""
    sentence_model = (sentence_embedder or embedder).name

    def fits(text: str) -> bool:
        return embedder.count_pieces(context_text(article, text)) <= embedder.max_pieces

    # Split once: chunking packs the same sentences, and the splitter is the
    # costliest step of a build besides the model (about half of the rest).
    split = split_sentences(article.text)
    chunks, chunk_texts, sentences, sentence_texts = [], [], [], []
    for chunk in chunk_article(article, settings.chunk_tokens, settings.overlap_tokens, settings.tokenizer, fits, split):
        text = context_text(article, chunk.text)
        chunks.append(
            ChunkRecord(chunk.id, article.id, chunk.position, chunk.start, chunk.end, chunk.n_tokens, _embed_hash(embedder.name, text))
        )
        chunk_texts.append(text)
    for sentence in split:
        if sentence.is_heading:
            continue  # a heading states a topic, never an answer
        text = mask_footnotes(article.text[sentence.start : sentence.end]).strip()
        sentences.append(SentenceRecord(article.id, sentence.start, sentence.end, _embed_hash(sentence_model, text)))
        sentence_texts.append(text)
    return ArticleUnits(chunks, chunk_texts, sentences, sentence_texts)


# The modules that turn an article's text into chunk and sentence records,
# and the tokenizer library that bounds the chunks: a change to any of them
# (a heading rule of the splitter, say) makes stored records stale.
UNIT_MODULES = ("sentences.py", "chunking.py", "tokens.py", "indexer.py", "types.py")
UNIT_DISTRIBUTIONS = ("tiktoken", "syntok")


@functools.lru_cache(maxsize=1)
def units_fingerprint() -> str:
    return code_fingerprint(UNIT_MODULES, UNIT_DISTRIBUTIONS)


def _stored_units(stored: StoredIndex | None, settings: IndexSettings, embedder: Embedder, sentence_embedder: Embedder) -> dict:
    """Each article's records in `stored` (article id -> (chunks, sentences)),
    when chunking it again would give the same ones: built by this version
    and the same splitting code, with the same models, chunking and repair;
    else nothing.

    A refresh after one article changed spent most of its time splitting and
    chunking the unchanged ones again (0.76 of 0.98 s, profiled, load 8)."""
    if stored is None:
        return {}
    m = stored.manifest
    if (m.package_version != __version__ or m.units_code != units_fingerprint()
            or m.model != embedder.name or m.dimension != embedder.dimension
            or (m.sentence_model or m.model) != sentence_embedder.name or m.chunking != settings.chunking()
            or m.repair != settings.repair):
        return {}
    by_article: dict[str, tuple[list[ChunkRecord], list[SentenceRecord]]] = {}
    for c in stored.chunks:
        by_article.setdefault(c.article_id, ([], []))[0].append(c)
    for r in stored.sentences:
        by_article.setdefault(r.article_id, ([], []))[1].append(r)
    return by_article


def _reused_units(article: Article, records: tuple[list[ChunkRecord], list[SentenceRecord]], embedder: Embedder,
                  sentence_embedder: Embedder) -> ArticleUnits | None:
    """An unchanged article's units from its stored records, or None when any
    text no longer hashes to its record's (then it is chunked again)."""
    chunks, sentences = records
    chunk_texts = [context_text(article, article.text[c.start : c.end]) for c in chunks]
    sentence_texts = [mask_footnotes(article.text[r.start : r.end]).strip() for r in sentences]
    if any(_embed_hash(embedder.name, t) != c.embed_hash for c, t in zip(chunks, chunk_texts)) or any(
        _embed_hash(sentence_embedder.name, t) != r.embed_hash for r, t in zip(sentences, sentence_texts)
    ):
        return None
    return ArticleUnits(list(chunks), chunk_texts, list(sentences), sentence_texts)


def staleness(stored: StoredIndex | None, corpus: Corpus, settings: IndexSettings, embedder: Embedder) -> str | None:
    """Why the stored index cannot serve this corpus and settings; None if it can."""
    if stored is None:
        return "no index yet"
    m = stored.manifest
    if m.model != embedder.name or m.dimension != embedder.dimension:
        return f"index was built with model {m.model} ({m.dimension} dims), settings use {embedder.name} ({embedder.dimension} dims)"
    sentence_model = sentence_embedder_for(settings, embedder).name
    if (m.sentence_model or m.model) != sentence_model:
        return f"sentences were embedded with model {m.sentence_model or m.model}, settings use {sentence_model}"
    if m.sparse_tokenizer != TOKENIZER_ID:
        return f"BM25 tokenization changed from {m.sparse_tokenizer or 'an older one'} to {TOKENIZER_ID}"
    if m.repair != settings.repair:
        state = {True: "on", False: "off"}
        return f"text repair changed from {state[m.repair]} to {state[settings.repair]}"
    if m.chunking != settings.chunking():
        return f"chunking changed from {m.chunking} to {settings.chunking()}"
    choice = index_choice(settings, m)
    spec = choose_spec(choice, m.n_chunks)
    built = IndexSpec.parse(m.index_type)
    if (choice, spec.kind) != (m.index_choice, built.kind):
        return f"vector index changed from {built.kind} ({m.index_choice}) to {spec.kind} ({choice})"
    current = {a.id: article_key(a) for a in corpus.articles}
    stored_keys = {k: v["key"] for k, v in m.articles.items()}
    if current != stored_keys:
        return "corpus changed"
    return None


def index_choice(settings: IndexSettings, manifest: Manifest | None) -> str:
    """The index type asked for: the setting, else what the index recorded, else auto."""
    if settings.index_type is not None:
        return settings.index_type
    return manifest.index_choice if manifest is not None else "auto"


def _previous_manifest(store: IndexStore, stored: StoredIndex | None) -> Manifest | None:
    """The manifest of the index being replaced, even one that is not loaded
    (a requested or damage-forced rebuild keeps the user's index type)."""
    if stored is not None:
        return stored.manifest
    try:
        return store.read_manifest()
    except StoreError:
        return None


def refresh(
    store: IndexStore,
    corpus: Corpus,
    settings: IndexSettings,
    embedder: Embedder,
    stored: StoredIndex | None,
    reason: str,
    progress: bool = False,
    use_cache: bool = True,
) -> tuple[StoredIndex, BuildSummary]:
    """Build the index for `corpus`, reusing what `stored` and the embedding
    cache already embedded (`use_cache=False`: only what `stored` holds)."""
    started = time.perf_counter()
    warnings: list[str] = []
    sentence_embedder = sentence_embedder_for(settings, embedder)
    cache = EmbeddingCache(store.folder, embedder.name, embedder.dimension, settings.embedding_cache_size)
    cached = cache.load() if use_cache else {}
    previous: dict[str, np.ndarray] = {}  # the replaced index's vectors, by hash
    old_articles: dict[str, dict] = {}
    same_model = True
    if stored is not None:
        m = stored.manifest
        previous = _vectors_by_hash(stored)
        same_model = m.model == embedder.name and m.dimension == embedder.dimension
        if not same_model:
            warnings.append(f"{reason}: the old model's vectors cannot be reused")
        old_articles = m.articles
    reusable = {**cached, **previous} if same_model else cached

    records: list[ChunkRecord] = []
    texts: list[str] = []
    sentence_records: list[SentenceRecord] = []
    sentence_texts: list[str] = []
    article_info: dict[str, dict] = {}
    stored_units = _stored_units(stored, settings, embedder, sentence_embedder)
    for article in corpus.articles:
        key = article_key(article)
        units = None
        if article.id in stored_units and old_articles.get(article.id, {}).get("key") == key:
            units = _reused_units(article, stored_units[article.id], embedder, sentence_embedder)
        if units is None:
            units = embedded_units(article, settings, embedder, sentence_embedder)
        records += units.chunks
        texts += units.chunk_texts
        sentence_records += units.sentences
        sentence_texts += units.sentence_texts
        article_info[article.id] = {"key": key, "source": article.source, "chunks": len(units.chunks)}

    pending = [
        _pending(embedder, records, texts, reusable, "chunks"),
        _pending(sentence_embedder, sentence_records, sentence_texts, reusable, "sentences"),
    ]
    _embed_all(pending, progress)
    (vectors, embedded), (sentence_vectors, sentences_embedded) = ((p.vectors, p.embedded) for p in pending)

    choice = index_choice(settings, _previous_manifest(store, stored))
    dense = DenseIndex.build(vectors, choose_spec(choice, len(records)))
    manifest = Manifest(
        package_version=__version__,
        model=embedder.name,
        sentence_model="" if sentence_embedder.name == embedder.name else sentence_embedder.name,
        dimension=embedder.dimension,
        chunking=settings.chunking(),
        articles=article_info,
        n_chunks=len(records),
        n_sentences=len(sentence_records),
        sparse_tokenizer=TOKENIZER_ID,
        repair=settings.repair,
        units_code=units_fingerprint(),
        index_type=dense.spec.describe(),
        index_choice=choice,
    )
    articles = corpus.by_id()
    sentence_df = sentence_document_frequency([articles[r.article_id].text[r.start : r.end] for r in sentence_records])
    built = StoredIndex(
        manifest, records, vectors, dense, SparseIndex.build(texts), sentence_records, sentence_vectors, sentence_df
    )
    live = {r.embed_hash for r in records} | {r.embed_hash for r in sentence_records}
    if stored is not None and not same_model:
        old_cache = EmbeddingCache(store.folder, stored.manifest.model, stored.manifest.dimension, settings.embedding_cache_size)
        old_cache.save(previous.items(), old_cache.load(), live=set())
    dropped = [(h, v) for h, v in previous.items() if h not in live] if same_model else []
    if dropped or live & cached.keys():
        cache.save(dropped, cached, live)
    new = store.save(built, corpus.reads)

    old_keys = {k: v["key"] for k, v in old_articles.items()}
    summary = BuildSummary(
        rebuilt=True,
        reason=reason,
        added=tuple(a for a in article_info if a not in old_keys),
        changed=tuple(a for a in article_info if a in old_keys and old_keys[a] != article_info[a]["key"]),
        removed=tuple(a for a in old_keys if a not in article_info),
        unchanged=tuple(a for a in article_info if old_keys.get(a) == article_info[a]["key"]),
        chunks=len(records),
        embedded=embedded,
        reused=len(records) - embedded,
        sentences_embedded=sentences_embedded,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )
    return new, summary
