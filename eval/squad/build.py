"""Build the SQuAD evaluation set (eval/squad/) from the shared SQuAD 1.0 train file.

    python eval/squad/build.py [--source PATH] [--out eval/squad]
    python eval/squad/build.py --development --out /tmp/squad-dev   # training articles 300-339

Deterministic: the same source file gives byte-identical output. The split
rule, shared by everything that uses the file: sort the 440 articles by
sha256(title) (hex); articles 0-19 are the evaluation corpus, articles 20-39
give the out-of-corpus questions, 40 and later are for training only.

Writes into --out:
- corpus/squad_NN_<slug>.txt: the article's paragraphs joined by a blank line;
- corpus/metadata.json: title, publisher "Wikipedia" per article;
- questions.jsonl: answerable questions sampled per article (with all gold
  answer texts), out-of-corpus questions from articles 20-39, the hand-written
  near-miss questions of near_miss.jsonl and follow-ups of follow_ups.jsonl
  (both merged as they are, after a check that their article ids exist).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/squad-train/squad-train-v1.0.jsonl.gz")
EVAL_ARTICLES = range(0, 20)
OUT_OF_CORPUS_ARTICLES = range(20, 40)
# Paragraphs kept per article, from its start (None: all). Whole articles fit the
# CI budget: indexing the 20 (733 KB) took 37 s here; see README.
PARAGRAPHS_PER_ARTICLE = None
ANSWERABLE_PER_ARTICLE = 15
OUT_OF_CORPUS_PER_ARTICLE = 3
SEED = 20161117  # fixed: the sample is part of the set's definition
HAND_WRITTEN = ("near_miss.jsonl", "follow_ups.jsonl")
# The development set (--development): training articles only, for choosing
# answer rules without looking at the evaluation set. Its one hand-written file
# holds subject-changing follow-ups ("And whites?" after a question about the
# Hispanic share), made from pairs of SQuAD questions of one article that differ
# in one phrase: the second question's gold answers are the follow-up's.
DEVELOPMENT = (range(300, 320), range(320, 340))
DEVELOPMENT_HAND_WRITTEN = ("dev_follow_ups.jsonl",)


def ordered_articles(source: Path) -> list[dict]:
    """Every article of the source file, in the split order (sha256 of the title)."""
    try:
        with gzip.open(source, "rt", encoding="utf-8") as f:
            articles = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        sys.exit(f"source file {source} does not exist: pass --source with the SQuAD 1.0 train JSON Lines (.gz)")
    except (OSError, ValueError) as e:
        sys.exit(f"source file {source} cannot be read ({e}): pass a gzip'd JSON Lines SQuAD file")
    return sorted(articles, key=lambda a: hashlib.sha256(a["title"].encode("utf-8")).hexdigest())


def slug(title: str) -> str:
    """ASCII file-name part: "St. John's, Newfoundland" -> "st_john_s_newfoundland"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_title.lower()).strip("_")


def article_id(n: int, title: str) -> str:
    return f"squad_{n:02d}_{slug(title)}"


def article_text(article: dict) -> str:
    return "\n\n".join(p["context"] for p in article["paragraphs"][:PARAGRAPHS_PER_ARTICLE]) + "\n"


def _qas(article: dict, paragraphs: int | None = None) -> list[dict]:
    return [qa for p in article["paragraphs"][:paragraphs] for qa in p["qas"]]


def _answers(qa: dict) -> list[str]:
    """The distinct gold answer texts, in their order."""
    return list(dict.fromkeys(a.strip() for a in qa["answers"] if a.strip()))


def sample_answerable(n: int, article: dict, rng: random.Random) -> list[dict]:
    aid = article_id(n, article["title"])
    text = article_text(article)
    folded = " ".join(text.split())
    # Only questions of the kept paragraphs, and only when a gold answer is in
    # the text as written (white space folded), so passage-answer@k can be met.
    pool = [
        qa for qa in _qas(article, PARAGRAPHS_PER_ARTICLE)
        if _answers(qa) and any(" ".join(a.split()) in folded for a in _answers(qa))
    ]
    chosen = rng.sample(pool, min(ANSWERABLE_PER_ARTICLE, len(pool)))
    return [
        {"id": f"s{n:02d}_{i:02d}", "question": qa["question"].strip(), "articles": [aid],
         "answers": _answers(qa), "kind": "answerable"}
        for i, qa in enumerate(chosen, start=1)
    ]


def sample_out_of_corpus(n: int, article: dict, rng: random.Random) -> list[dict]:
    chosen = rng.sample(_qas(article), OUT_OF_CORPUS_PER_ARTICLE)
    return [
        {"id": f"o{n:02d}_{i}", "question": qa["question"].strip(), "answerable": False, "kind": "out_of_corpus",
         "source_title": article["title"]}
        for i, qa in enumerate(chosen, start=1)
    ]


def hand_written(folder: Path, ids: set[str], names: tuple[str, ...] = HAND_WRITTEN) -> list[dict]:
    rows = []
    for name in names:
        path = folder / name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            unknown = [a for a in row.get("articles", []) + row.get("about", []) if a not in ids]
            if unknown:
                sys.exit(f"{path} line {number}: unknown article id(s) {unknown}: use ids of corpus/ ({sorted(ids)[0]} ...)")
            row.pop("neighbour", None)  # what the article does give, for the reader of near_miss.jsonl
            rows.append(row)
    return rows


def build(
    source: Path,
    out: Path,
    corpus_articles: range = EVAL_ARTICLES,
    out_of_corpus_articles: range = OUT_OF_CORPUS_ARTICLES,
    hand_written_files: tuple[str, ...] = HAND_WRITTEN,
) -> dict[str, int]:
    """Write the set; other article ranges (and their own hand-written files) make
    the development set of training articles (DEVELOPMENT)."""
    articles = ordered_articles(source)
    if len(articles) < max(out_of_corpus_articles) + 1:
        sys.exit(f"source file {source} holds {len(articles)} articles; the split needs at least {max(out_of_corpus_articles) + 1}")
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for old in corpus.glob("squad_*.txt"):
        old.unlink()
    metadata = {}
    for n in corpus_articles:
        a = articles[n]
        aid = article_id(n, a["title"])
        (corpus / f"{aid}.txt").write_text(article_text(a), encoding="utf-8", newline="\n")
        metadata[aid] = {
            "title": a["title"],
            "title_is_descriptive": False,
            "author": None,
            "publisher": "Wikipedia",
            "date": None,
            "notes": f"SQuAD 1.0 train, article {n} in sha256(title) order; its first "
                     f"{len(a['paragraphs'][:PARAGRAPHS_PER_ARTICLE])} of {len(a['paragraphs'])} paragraphs. "
                     "Text CC BY-SA 4.0 (Wikipedia contributors).",
        }
    (corpus / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    rng = random.Random(SEED)
    rows: list[dict] = []
    for n in corpus_articles:
        rows += sample_answerable(n, articles[n], rng)
    for n in out_of_corpus_articles:
        rows += sample_out_of_corpus(n, articles[n], rng)
    rows += hand_written(HERE, set(metadata), hand_written_files)
    for row in rows:
        row.pop("source_title", None)  # kept only for reading the code; the loader knows no such key
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            sys.exit(f"question id {row['id']!r} is used twice: rename it in {', '.join(hand_written_files)}")
        seen.add(row["id"])
    (out / "questions.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8", newline="\n"
    )
    counts: dict[str, int] = {}
    for r in rows:
        kind = r.get("kind", "answerable") + (" (follow-up)" if r.get("history") else "")
        counts[kind] = counts.get(kind, 0) + 1
    return {"articles": len(metadata), "characters": sum(len(article_text(articles[n])) for n in corpus_articles),
            "questions": len(rows), **counts}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                   help=f"SQuAD 1.0 train as gzip'd JSON Lines (default: {DEFAULT_SOURCE})")
    p.add_argument("--out", type=Path, default=None, help=f"the set's folder (default: {HERE})")
    p.add_argument("--development", action="store_true",
                   help="build the development set instead: training articles 300-319 as the corpus, out-of-corpus "
                        "questions from training articles 320-339, the follow-ups of dev_follow_ups.jsonl (needs --out)")
    args = p.parse_args(argv)
    if args.development:
        if args.out is None or args.out.resolve() == HERE:
            p.error("--development needs --out DIR outside eval/squad/, e.g. --out /tmp/squad-dev")
        counts = build(args.source, args.out, *DEVELOPMENT, hand_written_files=DEVELOPMENT_HAND_WRITTEN)
    else:
        counts = build(args.source, args.out or HERE)
    print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
