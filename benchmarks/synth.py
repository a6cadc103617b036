"""Synthetic corpora of any size, made from the real corpus's sentences.

    .venv/bin/python benchmarks/synth.py --chunks 10000 --out /tmp/synth10k   # .txt articles for `rag index`
    .venv/bin/python benchmarks/synth.py --chunks 1000 --passages -            # passages as JSON lines

Every synthetic article is real sentences of the repaired corpus (headings
left out), drawn without repetition inside an article and shuffled into
paragraphs, under a title cut from another real sentence. BM25 and the
sentence splitter therefore see real words, real abbreviations and real
sentence lengths; only the order of the sentences is made up. The same
--seed always gives the same articles, and a larger size starts with the
articles of every smaller one (the articles are one deterministic stream).

Two ways to passages (chunk texts as the product embeds them: title, blank
line, chunk):
  * "chunker": the product's own chunk_article on each article (syntok
    sentence splitting, tiktoken packing with overlap). About a thousand
    chunks a second on one core here: a million would take a quarter hour.
  * "fast": the same greedy packing rule (whole sentences up to chunk_tokens,
    whole sentences of overlap up to overlap_tokens, the title heading kept
    with the text after it), over sentences already split and counted once.
    Token counts of a span are the sum of its sentences' counts, which can
    differ from tiktoken's count of the joined text by a token or two.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # use this working copy of `rag`

DEFAULT_CORPUS = ROOT / "corpus"
# Article shape: paragraphs of a few sentences, as in the real articles
# (about 45 sentences and 15 chunks each); fewer sentences per article keeps
# 233 real sentences from repeating inside one article.
PARAGRAPHS = (3, 8)
SENTENCES_PER_PARAGRAPH = (2, 6)
TITLE_WORDS = (4, 9)
PASSAGE_PATHS = ("chunker", "fast")


@dataclass(frozen=True)
class SourceSentences:
    """The real sentences the synthetic articles are made of."""

    texts: tuple[str, ...]
    tokens: tuple[int, ...]  # tiktoken count of each, for the fast packer


@dataclass(frozen=True)
class SynthArticle:
    number: int
    title: str
    title_source: int  # the sentence the title was cut from
    paragraphs: tuple[tuple[int, ...], ...]  # sentence numbers

    @property
    def id(self) -> str:
        return f"synth_{self.number:07d}"

    def text(self, source: SourceSentences) -> str:
        body = "\n\n".join(" ".join(source.texts[i] for i in p) for p in self.paragraphs)
        return f"{self.title}\n\n{body}\n"


@dataclass(frozen=True)
class Passage:
    """One chunk-sized passage: what the product would embed and index."""

    article: int
    text: str  # title, blank line, chunk text (rag.indexer.context_text)
    sentences: tuple[int, ...]  # the real sentences it holds
    title_source: int


def load_sentences(corpus: Path = DEFAULT_CORPUS, tokenizer: str = "cl100k_base") -> SourceSentences:
    """The non-heading sentences of the repaired corpus, footnote markers blanked and spaces squeezed."""
    from rag.ingest import load_corpus
    from rag.sentences import mask_footnotes, split_sentences
    from rag.tokens import count_tokens

    texts: list[str] = []
    for article in load_corpus(corpus).articles:
        for s in split_sentences(article.text):
            if s.is_heading:
                continue
            text = " ".join(mask_footnotes(article.text[s.start : s.end]).split())
            if text and text not in texts:
                texts.append(text)
    if len(texts) < 2 * PARAGRAPHS[1] * SENTENCES_PER_PARAGRAPH[1]:
        raise SystemExit(f"synth: {corpus} holds only {len(texts)} sentences: give a larger corpus with --corpus")
    return SourceSentences(tuple(texts), tuple(count_tokens(t, tokenizer) for t in texts))


def _title(words: list[str], n: int) -> str:
    kept = [w.strip(".,;:!?\"'()[]“”‘’") for w in words[:n]]
    return " ".join(w[:1].upper() + w[1:] for w in kept if w)


def articles(source: SourceSentences, seed: int = 0) -> Iterator[SynthArticle]:
    """An endless, deterministic stream of synthetic articles."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_sent = len(source.texts)
    number = 0
    while True:
        shape = [int(rng.integers(SENTENCES_PER_PARAGRAPH[0], SENTENCES_PER_PARAGRAPH[1] + 1))
                 for _ in range(int(rng.integers(PARAGRAPHS[0], PARAGRAPHS[1] + 1)))]
        picked = rng.choice(n_sent, size=sum(shape) + 1, replace=False)
        title_source = int(picked[-1])
        words = source.texts[title_source].split()
        title = _title(words, int(rng.integers(TITLE_WORDS[0], TITLE_WORDS[1] + 1)))
        paragraphs, at = [], 0
        for size in shape:
            paragraphs.append(tuple(int(i) for i in picked[at : at + size]))
            at += size
        yield SynthArticle(number, title, title_source, tuple(paragraphs))
        number += 1


def _fast_spans(sizes: list[int], max_tokens: int, overlap_tokens: int) -> list[tuple[int, int]]:
    """The chunker's packing (rag.chunking.pack_units) over unit token counts
    summed instead of re-counted: [i, j) unit ranges. Unit 0 is the title heading."""
    from rag.chunking import pack_units

    def end_from(i: int) -> int:
        j, used = i + 1, sizes[i]
        while j < len(sizes) and used + sizes[j] <= max_tokens:
            used += sizes[j]
            j += 1
        if j - 1 == 0 and j < len(sizes):
            j = min(len(sizes), 2)  # a heading is never a chunk's last unit
        return j

    return pack_units(sizes, overlap_tokens, end_from, headings={0})


def _fast_passages(article: SynthArticle, source: SourceSentences, max_tokens: int, overlap_tokens: int) -> list[Passage]:
    from rag.tokens import count_tokens

    units = [-1] + [i for p in article.paragraphs for i in p]  # -1: the title line
    # What precedes each unit in the article text: a paragraph break or a space.
    breaks = [""] + ["\n\n" if k == 0 else " " for p in article.paragraphs for k in range(len(p))]
    sizes = [count_tokens(article.title)] + [source.tokens[i] for i in units[1:]]
    out = []
    for i, j in _fast_spans(sizes, max_tokens, overlap_tokens):
        body = "".join((breaks[k] if k > i else "") + (article.title if units[k] < 0 else source.texts[units[k]])
                       for k in range(i, j))
        out.append(Passage(article.number, f"{article.title}\n\n{body}",
                           tuple(u for u in units[i:j] if u >= 0), article.title_source))
    return out


def _chunker_passages(article: SynthArticle, source: SourceSentences, max_tokens: int, overlap_tokens: int,
                      tokenizer: str) -> list[Passage]:
    from rag.chunking import chunk_spans
    from rag.indexer import context_text
    from rag.types import Article

    text = article.text(source)
    # Where each sentence sits in the text, to know which real sentences a chunk holds.
    starts: list[tuple[int, int, int]] = []
    pos = len(article.title) + 2
    for p in article.paragraphs:
        for i in p:
            starts.append((pos, pos + len(source.texts[i]), i))
            pos += len(source.texts[i]) + 1
        pos += 1
    stub = Article(id=article.id, title=article.title, author=None, publisher=None, date=None, source="", text=text)
    out = []
    for start, end in chunk_spans(text, max_tokens, overlap_tokens, tokenizer):
        held = tuple(i for a, b, i in starts if a < end and b > start)
        out.append(Passage(article.number, context_text(stub, text[start:end]), held, article.title_source))
    return out


def passages(source: SourceSentences, n_chunks: int, seed: int = 0, path: str = "fast",
             max_tokens: int = 120, overlap_tokens: int = 30, tokenizer: str = "cl100k_base") -> Iterator[Passage]:
    """Exactly `n_chunks` passages of the article stream (the last article may be cut short)."""
    if path not in PASSAGE_PATHS:
        raise ValueError(f"passage path must be one of {', '.join(PASSAGE_PATHS)}, not {path!r}")
    made = 0
    for article in articles(source, seed):
        if path == "fast":
            chunk = _fast_passages(article, source, max_tokens, overlap_tokens)
        else:
            chunk = _chunker_passages(article, source, max_tokens, overlap_tokens, tokenizer)
        for p in chunk:
            if made == n_chunks:
                return
            yield p
            made += 1


def write_corpus(folder: Path, n_chunks: int, source: SourceSentences, seed: int = 0) -> int:
    """Write about `n_chunks` chunks' worth of articles as .txt files; returns the article count.

    The count comes from the fast packer; the product's chunker makes about as many."""
    folder.mkdir(parents=True, exist_ok=True)
    made, count = 0, 0
    for article in articles(source, seed):
        if made >= n_chunks:
            break
        (folder / f"{article.id}.txt").write_text(article.text(source), encoding="utf-8")
        made += len(_fast_passages(article, source, 120, 30))
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="synth.py",
        description="Make a synthetic corpus of about N chunks from the real corpus's sentences, "
                    "as .txt articles (--out) or as chunk-sized passages in JSON lines (--passages).",
        epilog="Deterministic for a given --seed and corpus. See the module docstring for how the passages are packed.",
    )
    parser.add_argument("--chunks", type=int, required=True, metavar="N", help="about how many chunks the corpus should make")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, metavar="DIR", help="real corpus to take sentences from (default: ./corpus)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, metavar="DIR", help="write .txt articles into DIR (then: rag index --corpus DIR)")
    out.add_argument("--passages", type=Path, metavar="FILE", help="write passages as JSON lines to FILE ('-': stdout)")
    parser.add_argument("--path", choices=PASSAGE_PATHS, default="fast",
                        help="with --passages: the product's chunker or the fast packer (default: fast)")
    args = parser.parse_args(argv)
    if args.chunks < 1:
        parser.error("--chunks must be at least 1")
    source = load_sentences(args.corpus)
    started = time.perf_counter()
    if args.out:
        count = write_corpus(args.out, args.chunks, source, args.seed)
        print(f"synth: wrote {count} articles (about {args.chunks} chunks) to {args.out} "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 0
    stream = sys.stdout if str(args.passages) == "-" else args.passages.open("w", encoding="utf-8")
    n = 0
    for p in passages(source, args.chunks, args.seed, args.path):
        stream.write(json.dumps({"article": p.article, "text": p.text, "sentences": p.sentences}) + "\n")
        n += 1
    seconds = time.perf_counter() - started
    print(f"synth: {n} passages by the {args.path} path in {seconds:.1f} s ({n / seconds:.0f}/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
