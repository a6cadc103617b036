"""SQuAD exact match and token F1 of `Answer.short` through the product, on the
evaluation articles 0-19 of the shared split (never trained on).

    python benchmarks/short_answers.py --work /tmp/squad-short [--n 1000] [--no-threshold] [--articles 300-319]

Writes the 20 articles as a corpus folder under --work (once), indexes them
(once; about 3 minutes of embedding), asks every question with `RAG.ask` and
scores its short answer with SQuAD's normalisation; a question without a
short answer counts 0. Until `rag eval` scores eval/squad/ this is the
measure behind the short-answer tables (README and eval/NOTES.md, Short answer).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_corpus(articles: list[dict], folder: Path) -> list[dict]:
    """The articles as .txt files plus metadata.json; returns their questions."""
    folder.mkdir(parents=True, exist_ok=True)
    meta, questions = {}, []
    for i, a in enumerate(articles):
        slug = re.sub(r"[^a-z0-9]+", "-", a["title"].lower()).strip("-")[:40]
        article_id = f"{i:03d}_{slug}"
        (folder / f"{article_id}.txt").write_text("\n\n".join(p["context"] for p in a["paragraphs"]) + "\n", encoding="utf-8")
        meta[article_id] = {"title": a["title"].replace("_", " "), "author": None, "publisher": None, "date": None}
        questions += [{"question": qa["question"], "answers": qa["answers"]} for p in a["paragraphs"] for qa in p["qas"]]
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return questions


def main() -> int:
    from rag.short_train import DEFAULT_DATA

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"the SQuAD train file (default: {DEFAULT_DATA})")
    ap.add_argument("--work", type=Path, required=True, help="folder for the corpus and its index (kept between runs)")
    ap.add_argument("--n", type=int, default=0, help="ask only this many questions, chosen by hash (default: all 4,408)")
    ap.add_argument("--no-threshold", action="store_true", help="give the best span even when it is not confident")
    ap.add_argument(
        "--articles", default="0-19", metavar="FIRST-LAST",
        help="articles of the split order to ask about (default: 0-19, the evaluation corpus; "
        "300-319 are the development set's, kept out of the scorer's training)",
    )
    args = ap.parse_args()
    first, _, last = args.articles.partition("-")
    if not (first.isdigit() and last.isdigit() and int(first) <= int(last) < 440):
        print(f"error: --articles {args.articles!r}: give two article numbers FIRST-LAST between 0 and 439, e.g. 300-319", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(f"error: SQuAD train file {args.data} not found: pass its path with --data", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.core import RAG
    from rag.settings import Settings
    from rag.short import load_model, short_answer
    from rag.evaluate import exact_match, squad_normalise, token_f1
    from rag.short_train import split_articles

    questions = write_corpus(split_articles(args.data)[int(first) : int(last) + 1], args.work / "corpus")
    if args.n:
        questions = sorted(questions, key=lambda q: hashlib.sha256(q["question"].encode("utf-8")).hexdigest())[: args.n]
    r = RAG.load(settings=Settings(corpus_dir=args.work / "corpus", index_dir=args.work / "index"), progress=True)
    articles = {a.id: a for a in r.articles}
    model = load_model()
    if args.no_threshold:
        model = dataclasses.replace(model, threshold=0.0)
    em = f1 = shown = holds = 0.0
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        answer = r.ask(q["question"])
        short = short_answer(q["question"], answer, articles, model)
        quotes = squad_normalise(" ".join(c.quote for c in answer.citations))
        holds += bool(quotes) and any(squad_normalise(g) in quotes for g in q["answers"])
        if short is not None:
            shown += 1
            em += exact_match(short.text, q["answers"])
            f1 += token_f1(short.text, q["answers"])
        if i % 200 == 0:
            print(f"{i}/{len(questions)}: EM {em / i:.3f}, F1 {f1 / i:.3f}", file=sys.stderr, flush=True)
    n = len(questions)
    print(json.dumps({
        "questions": n, "em": round(em / n, 4), "f1": round(f1 / n, 4), "with_short_answer": round(shown / n, 4),
        "quotes_hold_gold": round(holds / n, 4), "threshold": model.threshold,
        "seconds": round(time.perf_counter() - started, 1),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
