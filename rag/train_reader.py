"""Retrain the reading model (rag/models/reader-v1.json) from the shared SQuAD train file.

    python -m rag.train_reader            # build what is missing, train, calibrate, write weights + manifest
    python -m rag.train_reader --help

Steps, each cached under --cache (default /work/cache/reader):
1. pairs: SQuAD articles READER_ARTICLES (never 0-39; not the answer stage's
   40-103 either, whose questions calibrate the hook below), split into
   sentences by the product's splitter. For each sampled question: the
   sentence holding the gold answer (positive); the article's other sentences
   that share the most rare words with the question, a random one, and the
   closest ones of another article (negatives); and near misses made from the
   article's questions (squad.near_misses: a name, year or number swapped,
   kept when the article then does not answer), each paired with the sentence
   that answered the original and its closest sentences (negatives). Every
   text is cut into MiniLM word pieces once.
2. reader: the model of rag/reader.py in torch, the embedding matrix frozen,
   trained with binary cross-entropy; articles whose title hash ends in 0 or
   1 are held out to pick the epoch. Deterministic: fixed seeds, a fixed
   order, one thread count.
3. hook: the reader run on the product's own retrieval records of the answer
   stage's training corpus (rag.train_answer's cache: articles 40-63, out of
   corpus 64-103); a logistic regression over the reader's logits and the
   product's dense scores gives p_answerable, fitted on the training articles
   and its threshold chosen on the calibration articles (58-63, 92-103) for
   FALSE_ABSTENTION of their answerable questions.
4. write the weights and the manifest (data hashes, features, metrics).

Needs torch (installed with sentence-transformers); inference needs only numpy.
Time on this shared 2-core machine: 6 minutes for the pairs (once, cached),
then 14 minutes (3 epochs on one thread, the hook, the manifest);
`--reuse-reader FILE` refits only the hook (2 minutes); `--evaluate` scores
both evaluation sets with the weights at --out (1 minute, plus their indexes
on first use).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import reader as R
from .weightfile import add_false_abstention, manifest_path, run_unsalted, sha256

READER_ARTICLES = (104, 440)
QUESTIONS_PER_ARTICLE = 60
NEAR_MISSES_PER_ARTICLE = 25
HARD_NEGATIVES = 5  # same-article sentences sharing the most rare words with the question
FOREIGN_NEGATIVES = 2  # the closest sentences of another article: out-of-corpus-like
NEAR_MISS_NEGATIVES = 3  # besides the original's answering sentence
PAIRS_VERSION = "pairs/1"
DIM = 64
HIDDEN = 32
EPOCHS = 3
TRAIN_SAME_ARTICLE = 5
BATCH = 256
LR = 3e-3
SEED = 20170807  # K-NRM's SIGIR year and month; any fixed number does
FALSE_ABSTENTION = 0.03
TRAIN_ANSWER_CACHE = Path("/work/cache/learned")  # rag.train_answer's records (hits and Evidence per question)


def log(msg: str) -> None:
    print(f"[train_reader {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _h(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def held_out(title: str) -> bool:
    return _h(title)[-1] in "01"


# --- step 1: pairs ---------------------------------------------------------------------------------


def _article_sentences(a):
    from .sentences import split_sentences
    from .sparse import tokenize

    from .squad import normalise

    text = a.text
    spans = [(s.start, s.end) for s in split_sentences(text)]
    texts = [text[s:e] for s, e in spans]
    words = [frozenset(w) for w in tokenize(texts)] if texts else []
    # SQuAD's normalisation, once per sentence (it is slow: a set per character).
    normal = [f" {normalise(t)} " for t in texts]
    return texts, words, normal


def _holding(normal: Sequence[str], answers: Sequence[str]) -> list[int]:
    """Sentences holding a gold answer, as squad.contains_answer decides."""
    from .squad import normalise

    wanted = [f" {n} " for n in (normalise(x) for x in answers) if n]
    return [j for j, t in enumerate(normal) if any(n in t for n in wanted)]


def _overlap_order(q_words: frozenset, words: Sequence[frozenset], idf: dict, exclude: set) -> list[int]:
    scores = [(-sum(idf.get(w, 0.0) for w in q_words & ws), j) for j, ws in enumerate(words) if j not in exclude]
    scores.sort()
    return [j for s, j in scores if s < 0]


def build_pairs(pieces: R.Pieces) -> dict:
    """Every (question, sentence, window) pair with its label, as piece-id lists."""
    from . import squad
    from .sparse import tokenize

    arts = squad.articles(*READER_ARTICLES, for_training=True)
    parsed = []
    for a in arts:
        parsed.append(_article_sentences(a))
    log(f"pairs: {len(arts)} articles split into {sum(len(t) for t, _, _ in parsed)} sentences")
    rows: list[dict] = []
    for ai, (a, (texts, words, normal)) in enumerate(zip(arts, parsed)):
        if not texts:
            continue
        df: dict[str, int] = {}
        for ws in words:
            for w in ws:
                df[w] = df.get(w, 0) + 1
        idf = {w: math.log((len(words) + 1) / (c + 0.5)) for w, c in df.items()}
        other_i = (ai + 1 + int(_h(a.title)[:6], 16) % (len(arts) - 1)) % len(arts)
        o_texts, o_words, _ = parsed[other_i]
        split = "held_out" if held_out(a.title) else "train"

        def add(question: str, j: int, label: int, kind: str, texts=texts, split=split) -> None:
            rows.append({
                "question": question, "sentence": texts[j],
                "before": texts[j - 1] if j > 0 else "", "after": texts[j + 1] if j + 1 < len(texts) else "",
                "label": label, "kind": kind, "split": split, "article": a.title,
            })

        questions = squad.sample_questions(a, QUESTIONS_PER_ARTICLE, salt="reader")
        q_words_all = tokenize([q.question for q in questions]) if questions else []
        gold_of: dict[str, int] = {}
        for q, qw in zip(questions, q_words_all):
            qw = frozenset(qw)
            holding = _holding(normal, q.answers)
            if not holding:
                continue  # the answer crosses a sentence boundary as split here
            gold = max(holding, key=lambda j: (sum(idf.get(w, 0.0) for w in qw & words[j]), -j))
            gold_of[q.question] = gold
            add(q.question, gold, 1, "answer")
            hard = _overlap_order(qw, words, idf, set(holding))
            for j in hard[:HARD_NEGATIVES]:
                add(q.question, j, 0, "same_article")
            rest = [j for j in range(len(texts)) if j not in holding and j not in hard[:HARD_NEGATIVES]]
            if rest:
                add(q.question, rest[int(_h(q.question, "random")[:8], 16) % len(rest)], 0, "random")
            for j in _overlap_order(qw, o_words, idf, set())[:FOREIGN_NEGATIVES]:
                add(q.question, j, 0, "other_article", texts=o_texts)
        sources = squad.sample_questions(a, 1000, salt="near-reader")
        answers = {q.question: q.answers for q in sources}
        made = squad.near_misses(a, sources, NEAR_MISSES_PER_ARTICLE)
        made_words = tokenize([m.question for m in made]) if made else []
        source_words = tokenize([m.source for m in made]) if made else []
        for m, mw, sw in zip(made, made_words, source_words):
            holding = _holding(normal, answers[m.source])
            src_words = frozenset(sw)
            if holding:
                j = max(holding, key=lambda j: (sum(idf.get(w, 0.0) for w in src_words & words[j]), -j))
                add(m.question, j, 0, "near_miss_source")
            for j in _overlap_order(frozenset(mw), words, idf, set(holding))[:NEAR_MISS_NEGATIVES]:
                add(m.question, j, 0, "near_miss")
        if ai % 50 == 0:
            log(f"pairs: article {ai + 1}/{len(arts)}, {len(rows)} pairs")
    return rows


def encode(rows: list[dict], pieces: R.Pieces) -> dict[str, np.ndarray]:
    """Rows as padded piece-id arrays (-1 pads) and extras, in the reader's limits."""
    questions = sorted({r["question"] for r in rows})
    q_ids = dict(zip(questions, pieces.ids(questions)))
    texts = sorted({t for r in rows for t in (r["sentence"], r["before"], r["after"])})
    t_ids = dict(zip(texts, pieces.ids(texts)))
    n = len(rows)
    q = np.full((n, R.MAX_Q), -1, dtype=np.int32)
    s = np.full((n, R.MAX_S), -1, dtype=np.int32)
    w = np.full((n, R.MAX_W), -1, dtype=np.int32)
    x = np.zeros((n, R.n_extra()), dtype=np.float32)
    for i, r in enumerate(rows):
        a = q_ids[r["question"]][: R.MAX_Q]
        q[i, : len(a)] = a
        b = t_ids[r["sentence"]][: R.MAX_S]
        s[i, : len(b)] = b
        c = R.window_ids(t_ids[r["before"]], t_ids[r["after"]])[: R.MAX_W]
        w[i, : len(c)] = c
        x[i] = R.extra_features(r["question"], r["sentence"], r["before"] + " " + r["after"])
    return {"q": q, "s": s, "w": w, "x": x}


def piece_idf(pieces: R.Pieces) -> np.ndarray:
    """IDF of each word piece over the paragraphs of the reader's articles, divided by 4,
    rounded to 4 decimals (as shipped, so training sees the shipped numbers)."""
    from . import squad

    df = np.zeros(pieces.size, dtype=np.int64)
    n = 0
    for a in squad.articles(*READER_ARTICLES, for_training=True):
        paragraphs = list(a.paragraphs)
        for ids in pieces.ids(paragraphs):
            df[np.unique(ids)] += 1
            n += 1
    return np.round(np.log((n + 1) / (df + 1)).astype(np.float32) / 4.0, 4)


# --- step 2: the reader in torch -----------------------------------------------------------------


def _torch_model(matrix: np.ndarray, idf: np.ndarray):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            e = torch.from_numpy(matrix)
            self.register_buffer("emb", e)
            self.register_buffer("idf", torch.from_numpy(idf.astype(np.float32)))
            # Start from the embedding matrix's principal directions: a
            # deterministic start that keeps most of its similarity structure.
            centred = e - e.mean(0, keepdim=True)
            _, vecs = torch.linalg.eigh(centred.T @ centred)
            top = vecs[:, -DIM:].flip(1)
            top = top * torch.sign(top[top.abs().argmax(0), torch.arange(DIM)])[None, :]
            self.projection = nn.Parameter(top.contiguous())
            self.gate = nn.Parameter(torch.zeros(R.HEADS, 3, e.shape[1]))
            self.gate_idf = nn.Parameter(torch.tensor([1.0, 3.0]))
            d_in = R.HEADS * 2 * R.PER_PIECE + R.n_extra()
            self.l1 = nn.Linear(d_in, HIDDEN)
            self.l2 = nn.Linear(HIDDEN, 1)
            self.register_buffer("mus", torch.tensor(R.MUS, dtype=torch.float32))

        def kernels(self, eq, qid, et, tid, tmask, qmask):
            sim = torch.einsum("bqd,btd->bqt", eq, et)
            # Pads moved far from every kernel centre count exactly 0, which
            # saves a mask product on the largest tensor here (b, q, t, kernels).
            far = sim.masked_fill(tmask[:, None, :] == 0, -10.0)
            k = torch.exp(-((far[..., None] - self.mus) ** 2) / (2 * R.SIGMA**2))
            soft = torch.log1p(k.sum(2))
            exact = torch.log1p(((qid[:, :, None] == tid[:, None, :]) & (tmask[:, None, :] > 0)).float().sum(2))
            best = sim.masked_fill(tmask[:, None, :] == 0, -1e4).max(2).values
            best = torch.where(tmask.sum(1, keepdim=True) > 0, best, torch.zeros_like(best))
            return torch.cat([soft, exact[..., None], best[..., None]], 2) * qmask[..., None]

        def forward(self, q, s, w, x):
            qmask, smask, wmask = (q >= 0).float(), (s >= 0).float(), (w >= 0).float()
            q0, s0, w0 = q.clamp(min=0), s.clamp(min=0), w.clamp(min=0)
            ids = torch.cat([q0.reshape(-1), s0.reshape(-1), w0.reshape(-1)])
            u, inv = torch.unique(ids, return_inverse=True)
            raw = self.emb[u]
            proj = raw @ self.projection
            table = proj / proj.norm(dim=1, keepdim=True).clamp(min=1e-6)
            nq, ns = q.numel(), s.numel()
            eq = table[inv[:nq]].view(*q.shape, -1)
            es = table[inv[nq : nq + ns]].view(*s.shape, -1)
            ew = table[inv[nq + ns :]].view(*w.shape, -1)
            gates = torch.einsum("vd,hkd->vhk", raw, self.gate)  # (u, heads, 3)
            gq = gates[inv[:nq]].view(*q.shape, R.HEADS, 3)
            own = gq[..., 0] + self.gate_idf[None, None, :] * self.idf[q0][..., None]
            left = torch.zeros_like(own)
            left[:, 1:] = gq[:, :-1, :, 1] * qmask[:, :-1, None]
            right = torch.zeros_like(own)
            right[:, :-1] = gq[:, 1:, :, 2] * qmask[:, 1:, None]
            g = (own + left + right).masked_fill(qmask[..., None] == 0, -1e9)
            attention = torch.softmax(g, dim=1)  # (b, q, heads)
            per = torch.cat([self.kernels(eq, q, es, s, smask, qmask), self.kernels(eq, q, ew, w, wmask, qmask)], 2)
            pooled = torch.einsum("bqh,bqf->bhf", attention, per).reshape(q.shape[0], -1)
            h = torch.tanh(self.l1(torch.cat([pooled, x], 1)))
            return self.l2(h).squeeze(1)

    return Net()


def train_reader(data: dict[str, np.ndarray], labels: np.ndarray, train_ids: np.ndarray, val_ids: np.ndarray,
                 matrix: np.ndarray, idf: np.ndarray, epochs: int = EPOCHS):
    import torch

    torch.manual_seed(SEED)
    # One thread: on this shared machine a second thread waits for a busy core
    # (a step took 0.6 s of CPU with two threads under load, 0.3 s with one),
    # and a fixed count keeps the sums in the same order run after run.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = _torch_model(matrix, idf)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=LR, weight_decay=1e-4)
    t = {k: torch.from_numpy(v.astype(np.int64) if v.dtype == np.int32 else v) for k, v in data.items()}
    y = torch.from_numpy(labels.astype(np.float32))
    pos_weight = torch.tensor(float((labels[train_ids] == 0).sum() / max((labels[train_ids] == 1).sum(), 1)) ** 0.5)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    rng = np.random.default_rng(SEED)
    best = (math.inf, None, -1)
    steps = len(_bucketed(train_ids, data)) * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        net.train()
        batches = _bucketed(rng.permutation(train_ids), data)
        total, t0 = 0.0, time.time()
        for step, rows in enumerate(batches):
            idx = torch.from_numpy(rows)
            out = net(*_batch(t, idx))
            loss = loss_fn(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            if step % 100 == 0:
                log(f"reader: epoch {epoch + 1} step {step}/{len(batches)} loss {float(loss.detach()):.4f}")
        val = predict(net, t, val_ids)
        val_loss = float(loss_fn(torch.from_numpy(val), y[torch.from_numpy(val_ids)]))
        log(f"reader: epoch {epoch + 1}/{epochs} train loss {total / len(train_ids):.4f}, held-out loss {val_loss:.4f} "
            f"({time.time() - t0:.0f} s)")
        if val_loss < best[0]:
            best = (val_loss, {k: v.detach().clone() for k, v in net.state_dict().items()}, epoch + 1)
    net.load_state_dict(best[1])
    log(f"reader: kept epoch {best[2]} (held-out loss {best[0]:.4f})")
    return net, best[2]


def _batch(t, idx):
    """The rows `idx`, their padding cut to the longest row of the batch
    (pads are -1 at the end, so nothing real is cut): most sentences are far
    shorter than MAX_S, and the kernels cost in proportion to the lengths."""
    out = []
    for key in ("q", "s", "w"):
        rows = t[key][idx]
        width = max(int((rows >= 0).sum(1).max()), 1)
        out.append(rows[:, :width])
    return (*out, t["x"][idx])


def _bucketed(order: np.ndarray, data: dict[str, np.ndarray], group: int = 40) -> list[np.ndarray]:
    """The shuffled order regrouped so that each batch holds pairs of like
    length (sorted within runs of `group` batches, the batches then shuffled
    again): the padding cut by _batch then cuts far more."""
    lengths = (data["s"][order] >= 0).sum(1) + (data["w"][order] >= 0).sum(1)
    batches = []
    for g in range(0, len(order), BATCH * group):
        part = order[g : g + BATCH * group]
        part = part[np.argsort(lengths[g : g + BATCH * group], kind="stable")]
        batches += [part[b : b + BATCH] for b in range(0, len(part), BATCH)]
    shuffle = np.random.default_rng(int(order[0]) if len(order) else 0).permutation(len(batches))
    return [batches[i] for i in shuffle]


def training_rows(meta: list[dict], split: np.ndarray) -> np.ndarray:
    """The training pairs used: every positive and near-miss pair, the
    TRAIN_SAME_ARTICLE hardest same-article negatives of each question and one
    sentence of another article. The rest are left out to fit the training
    into the time a shared 2-core machine gives (the held-out pairs keep all)."""
    seen: dict[tuple[str, str], int] = {}
    keep = []
    for i, m in enumerate(meta):
        if split[i]:
            continue
        key = (m["question"], m["kind"])
        rank = seen.get(key, 0)
        seen[key] = rank + 1
        limit = {"same_article": TRAIN_SAME_ARTICLE, "other_article": 2, "random": 1}.get(m["kind"])
        if limit is None or rank < limit:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def predict(net, t, ids: np.ndarray, batch: int = 1024) -> np.ndarray:
    import torch

    net.eval()
    # By length, so that _batch cuts the padding; the logits go back in order.
    lengths = (t["s"][torch.from_numpy(ids)] >= 0).sum(1) + (t["w"][torch.from_numpy(ids)] >= 0).sum(1)
    by_length = np.argsort(lengths.numpy(), kind="stable")
    out = np.zeros(len(ids), dtype=np.float32)
    with torch.no_grad():
        for b in range(0, len(ids), batch):
            part = by_length[b : b + batch]
            out[part] = net(*_batch(t, torch.from_numpy(ids[part]))).numpy()
    return out


def _r(a, digits: int = 6):
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def reader_arrays(net, idf: np.ndarray) -> dict:
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    return {
        "projection": _r(sd["projection"]), "gate": _r(sd["gate"]), "gate_idf": _r(sd["gate_idf"]),
        "idf": np.asarray(idf, dtype=np.float64).round(4).tolist(),
        "w1": _r(sd["l1.weight"]), "b1": _r(sd["l1.bias"]), "w2": _r(sd["l2.weight"][0]), "b2": float(round(float(sd["l2.bias"][0]), 6)),
    }


# --- step 3: the hook on the product's records ---------------------------------------------------


def hook_rows(reader: R.Reader, records, articles) -> tuple[list, np.ndarray]:
    """For each record (question, hits, evidence): the combiner's row."""
    qs, rows = [], []
    for q, hits, evidence in records:
        cands = list(evidence[: R.CANDIDATES])
        if cands:
            triples = R.neighbours(cands + list(evidence[R.CANDIDATES :]), articles)[: len(cands)]
            logits = reader.logits(q["question"] if isinstance(q, dict) else q.question, *map(list, zip(*triples)))
        else:
            logits = np.zeros(0)
        qs.append(q)
        rows.append(R.combiner_row(logits, cands, hits))
    return qs, np.vstack(rows)


def answer_removed(records, articles) -> list:
    """Near misses made from answerable records without writing a question:
    the same question, with every retrieved passage that holds a gold answer
    taken away (and its sentences). What is left is about the question's
    subject but does not give the detail asked for, which is what a
    hand-written near miss is; a near miss made by swapping a name (the
    records' own) mostly lowers the dense scores instead, and a combiner fitted
    only on those learns to trust the dense scores."""
    import dataclasses

    from .squad import contains_answer

    out = []
    for q, hits, evidence in records:
        if q.kind != "answerable":
            continue
        kept = [h for h in hits if not contains_answer(articles[h.article_id].text[h.start : h.end], q.answers)]
        if len(kept) == len(hits) or not kept:
            continue  # retrieval missed the answer anyway, or nothing is left
        inside = [e for e in evidence if any(h.article_id == e.article_id and h.start <= e.start and e.end <= h.end for h in kept)]
        inside = [e for e in inside if not contains_answer(articles[e.article_id].text[e.start : e.end], q.answers)]
        if inside:
            removed = dataclasses.replace(q, id=q.id + "-removed", answers=(), kind="answer_removed", source=q.question)
            out.append((removed, kept, inside))
    return out


def roc_auc(pos, neg):
    from .train_answer import roc_auc as auc

    return auc(pos, neg)


def figures(p: np.ndarray, kinds: Sequence[str], threshold: float) -> dict:
    pos = [float(v) for v, k in zip(p, kinds) if k == "answerable"]
    out = {"false_abstention": round(float(np.mean([v < threshold for v in pos])), 4) if pos else None}
    for kind in ("near_miss", "out_of_corpus", "answer_removed"):
        neg = [float(v) for v, k in zip(p, kinds) if k == kind]
        if not neg:
            continue
        out[f"abstention_{kind}"] = round(float(np.mean([v < threshold for v in neg])), 4) if neg else None
        a = roc_auc(pos, neg)
        out[f"auc_{kind}"] = None if a is None else round(a, 4)
    unans = [float(v) for v, k in zip(p, kinds) if k != "answerable"]
    out["abstention_unanswerable"] = round(float(np.mean([v < threshold for v in unans])), 4) if unans else None
    out["questions"] = {k: int(sum(1 for x in kinds if x == k)) for k in sorted(set(kinds))}
    return out


def load_records_rag(corpus: Path, index: Path):
    from .core import RAG

    return RAG.load(corpus, index, progress=False)


def eval_records(path: Path):
    from .evidence import Evidence
    from .types import Hit

    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            yield d["q"], [Hit(**h) for h in d["hits"]], [Evidence(**e) for e in d["evidence"]]


def reused_reader(path: Path) -> tuple[dict, dict]:
    """The reader arrays and held-out pair metrics of an earlier weight file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    return {k: data[k] for k in (*R.ARRAY_SHAPES, "b2")}, manifest["metrics"]["reader_pairs_held_out"]


def fit_reader(data, labels, split, meta, matrix, idf, pieces, epochs) -> tuple[dict, dict]:
    """Step 2: train the reader on the pairs; its arrays as shipped and held-out figures."""
    train_ids = training_rows(meta, split)
    val_ids = np.flatnonzero(split)
    log(f"reader: {len(train_ids)} training pairs, {len(val_ids)} held out")
    net, kept_epoch = train_reader(data, labels, train_ids, val_ids, matrix, idf, epochs)

    # Held-out pair figures: pointwise AUC, and per question the best logit
    # (answerable questions against generated near misses).
    import torch

    tt = {k: torch.from_numpy(v.astype(np.int64) if v.dtype == np.int32 else v) for k, v in data.items()}
    val_logits = predict(net, tt, val_ids)
    pair_auc = roc_auc(val_logits[labels[val_ids] == 1], val_logits[labels[val_ids] == 0])
    best_of: dict[tuple[str, str], float] = {}
    for i, v in zip(val_ids, val_logits):
        k = (meta[i]["question"], "near_miss" if meta[i]["kind"].startswith("near_miss") else "answerable")
        best_of[k] = max(best_of.get(k, -math.inf), float(v))
    q_auc = roc_auc([v for (q, k), v in best_of.items() if k == "answerable"],
                    [v for (q, k), v in best_of.items() if k == "near_miss"])
    log(f"reader held out: pair AUC {pair_auc:.4f}; question AUC, answerable vs generated near miss, {q_auc:.4f}")

    arrays = reader_arrays(net, idf)
    # The hook's combiner needs the reader as shipped (rounded arrays, numpy).
    weights = R.ReaderWeights(
        *(np.asarray(arrays[k], dtype=np.float32) for k in R.ARRAY_SHAPES[:4]),
        np.asarray(arrays["w1"], dtype=np.float32), np.asarray(arrays["b1"], dtype=np.float32),
        np.asarray(arrays["w2"], dtype=np.float32), arrays["b2"],
        {"features": R.COMBINER_FEATURES, "mean": np.zeros(4), "scale": np.ones(4), "weights": np.zeros(4), "bias": 0.0}, 0.5,
    )
    reader = R.Reader(weights, {}, matrix, pieces)
    # The numpy inference must be the torch model: compare on held-out pairs.
    check = val_ids[:300]
    numpy_logits = np.asarray([
        reader.logits_ids(data["q"][i][data["q"][i] >= 0], [data["s"][i][data["s"][i] >= 0]],
                          [data["w"][i][data["w"][i] >= 0]], data["x"][i][None, :])[0]
        for i in check
    ])
    gap = float(np.abs(numpy_logits - val_logits[: len(check)]).max()) if len(check) else 0.0
    log(f"numpy inference against torch on {len(check)} held-out pairs: largest difference {gap:.2e}")
    if gap > 1e-2:
        raise RuntimeError(f"numpy and torch readers disagree by {gap} on held-out pairs: a bug in one of them")

    return arrays, {"pair_auc": round(pair_auc, 4), "question_auc_generated_near_miss": round(q_auc, 4),
                    "kept_epoch": kept_epoch}


def train(cache: Path, out: Path, false_abstention: float = FALSE_ABSTENTION, epochs: int = EPOCHS,
          reuse: Path | None = None) -> dict:
    from . import squad
    from .embedding import resolve_model
    from .train_answer import fit_logistic, read_records, split_rule

    t0 = time.time()
    cache.mkdir(parents=True, exist_ok=True)
    folder = resolve_model(R.EMBEDDING_MODEL)
    pieces = R.Pieces(folder)
    pairs_file = cache / "pairs.npz"
    rows_file = cache / "pairs.jsonl.gz"
    stamp = _h(PAIRS_VERSION, squad.file_sha256(), json.dumps([READER_ARTICLES, QUESTIONS_PER_ARTICLE,
               NEAR_MISSES_PER_ARTICLE, HARD_NEGATIVES, FOREIGN_NEGATIVES, NEAR_MISS_NEGATIVES, R.MAX_Q, R.MAX_S, R.MAX_W]))
    if pairs_file.is_file() and (cache / "pairs.stamp").is_file() and (cache / "pairs.stamp").read_text() == stamp:
        z = np.load(pairs_file)
        data = {k: z[k] for k in ("q", "s", "w", "x")}
        labels, split, idf = z["label"], z["split"], z["idf"]
        with gzip.open(rows_file, "rt", encoding="utf-8") as f:
            meta = [json.loads(line) for line in f]
        log(f"pairs: cached in {pairs_file}")
    else:
        rows = build_pairs(pieces)
        data = encode(rows, pieces)
        labels = np.asarray([r["label"] for r in rows], dtype=np.int8)
        split = np.asarray([r["split"] == "held_out" for r in rows])
        idf = piece_idf(pieces)
        np.savez_compressed(pairs_file, label=labels, split=split, idf=idf, **data)
        meta = [{"question": r["question"], "kind": r["kind"], "article": r["article"]} for r in rows]
        with gzip.open(rows_file, "wt", encoding="utf-8") as f:
            for m in meta:
                f.write(json.dumps(m, sort_keys=True) + "\n")
        (cache / "pairs.stamp").write_text(stamp)
    kinds = {}
    for m in meta:
        kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
    log(f"pairs: {len(labels)} ({int(labels.sum())} positive); by kind {kinds}")

    matrix = R.embedding_matrix(folder)
    if reuse is not None:
        arrays, reader_metrics = reused_reader(reuse)
        log(f"reader: reused from {reuse} (only the hook is refitted)")
    else:
        arrays, reader_metrics = fit_reader(data, labels, split, meta, matrix, idf, pieces, epochs)
    weights = R.ReaderWeights(
        *(np.asarray(arrays[k], dtype=np.float32) for k in R.ARRAY_SHAPES[:4]),
        np.asarray(arrays["w1"], dtype=np.float32), np.asarray(arrays["b1"], dtype=np.float32),
        np.asarray(arrays["w2"], dtype=np.float32), arrays["b2"],
        {"features": R.COMBINER_FEATURES, "mean": np.zeros(4), "scale": np.ones(4), "weights": np.zeros(4), "bias": 0.0}, 0.5,
    )
    reader = R.Reader(weights, {}, matrix, pieces)

    r = load_records_rag(cache / "train-corpus", cache / "train-index")
    articles = r.corpus.by_id()
    records = list(read_records(TRAIN_ANSWER_CACHE / "train-records.jsonl.gz"))
    records += answer_removed(records, articles)
    qs, x = hook_rows(reader, records, articles)
    split_of = split_rule()
    kinds_all = [q.kind for q in qs]
    is_cal = np.asarray([split_of(q) == "calibration" for q in qs])
    y = np.asarray([k == "answerable" for k in kinds_all], dtype=np.float64)
    fit = np.flatnonzero(~is_cal)
    cw = np.where(y[fit] == 1, 0.5 / y[fit].mean(), 0.5 / (1 - y[fit].mean()))
    np.savez_compressed(cache / "hook-rows.npz", x=x, kinds=np.asarray(kinds_all), calibration=is_cal)

    def fitted(use: Sequence[int]):
        mean, scale, w, bias = fit_logistic(x[fit][:, use], y[fit], weights=cw, signs=[+1] * len(use))
        full_mean, full_scale, full_w = np.zeros(x.shape[1]), np.ones(x.shape[1]), np.zeros(x.shape[1])
        full_mean[use], full_scale[use], full_w[use] = mean, scale, w
        z = ((x - full_mean) / full_scale) @ full_w + bias
        return full_mean, full_scale, full_w, bias, 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def held_out_auc(p) -> float:
        # Mean ROC AUC on the calibration articles over the three unanswerable kinds.
        pos = p[is_cal & (y == 1)]
        kinds_cal = np.asarray(kinds_all)
        return float(np.mean([roc_auc(pos, p[is_cal & (kinds_cal == k)]) for k in ("near_miss", "out_of_corpus", "answer_removed")]))

    # Which of the product's dense scores join the reader's logits: chosen by
    # that held-out mean (never on the evaluation sets); the unused get weight 0.
    subsets = [(0, 1), (0, 1, 2), (0, 1, 3), (0, 1, 2, 3)]
    scored = [(held_out_auc(fitted(list(u))[-1]), -len(u), u) for u in subsets]
    for a, _, u in scored:
        log(f"hook: features {[R.COMBINER_FEATURES[j] for j in u]}: calibration mean AUC {a:.4f}")
    use = list(max(scored)[2])
    mean, scale, w, bias, p = fitted(use)
    cal_pos = np.sort(p[is_cal & (y == 1)])
    threshold = math.nextafter(float(cal_pos[int(math.floor(false_abstention * len(cal_pos)))]), 0.0)
    metrics = {
        "reader_pairs_held_out": reader_metrics,
        "hook_calibration": figures(p[is_cal], [k for k, c in zip(kinds_all, is_cal) if c], threshold),
        "hook_training": figures(p[~is_cal], [k for k, c in zip(kinds_all, is_cal) if not c], threshold),
        "combiner_features_used": [R.COMBINER_FEATURES[j] for j in use],
        "combiner_choice_calibration_mean_auc": {"+".join(R.COMBINER_FEATURES[j] for j in u): round(a, 4) for a, _, u in scored},
    }
    log(f"hook: threshold {threshold:.4f} for {false_abstention:.0%} held-out false abstention; "
        f"calibration {metrics['hook_calibration']}")

    data_out = {
        "format": R.FORMAT, **arrays,
        "combiner": {"features": list(R.COMBINER_FEATURES), "mean": _r(mean, 8), "scale": _r(scale, 8),
                     "weights": _r(w, 8), "bias": round(float(bias), 8)},
        "threshold": threshold,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data_out, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    manifest = {
        "weights_file": out.name,
        "weights_sha256": sha256(out),
        "format": R.FORMAT,
        "embedding_model": R.EMBEDDING_MODEL,
        "embedding_matrix": R.EMBEDDING_KEY,
        "limits": {"max_question_pieces": R.MAX_Q, "max_sentence_pieces": R.MAX_S, "max_window_pieces": R.MAX_W,
                   "kernels": list(R.MUS), "sigma": R.SIGMA, "heads": R.HEADS, "dim": DIM, "hidden": HIDDEN,
                   "candidates": R.CANDIDATES},
        "extra_features": ["q_negation", "s_negation", "window_negation", "negation_mismatch", "q_has_number",
                           "number_cover", "type_asked", "type_in_sentence", "type_in_window", "length_log",
                           *(f"wh_{k}" for k in R._wh_kinds())],
        "combiner_features": list(R.COMBINER_FEATURES),
        "data": {
            "squad_file_sha256": squad.file_sha256(),
            "pairs_sha256": hashlib.sha256(pairs_file.read_bytes()).hexdigest(),
            "reader_articles": list(READER_ARTICLES),
            "reader_held_out": "articles whose sha256(title) hex ends in 0 or 1",
            "pairs": {"total": int(len(labels)), "positive": int(labels.sum()), "by_kind": kinds},
            "hook_records": str(TRAIN_ANSWER_CACHE / "train-records.jsonl.gz"),
            "hook_records_sha256": hashlib.sha256((TRAIN_ANSWER_CACHE / "train-records.jsonl.gz").read_bytes()).hexdigest(),
            "hook_split": "rag.train_answer.split_rule: articles 40-57 and 64-91 fit, 58-63 and 92-103 calibrate",
            "split_rule": "articles sorted by sha256(title); 0-39 never read",
        },
        "training": {"epochs": epochs, "batch": BATCH, "lr": LR, "seed": SEED, "torch_threads": 1},
        "threshold_rule": f"lowest calibration answerable p at the {false_abstention:.0%} quantile",
        "false_abstention_target": false_abstention,
        "metrics": metrics,
        "training_seconds": round(time.time() - t0, 1),
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    log(f"wrote {out} ({out.stat().st_size:,} bytes) and its manifest in {time.time() - t0:.0f} s")
    return manifest


# --- evaluation on the two question sets (never trained or calibrated on) ----------------------

EVAL_SETS = {
    # name: (corpus folder, question file), relative to the project root
    "squad": ("eval/squad/corpus", "eval/squad/questions.jsonl"),
    "five": ("corpus", "eval/questions.jsonl"),
}
ROOT = Path(__file__).resolve().parent.parent


def eval_questions(path: Path) -> list[dict]:
    """A `rag eval` question file as dicts: kind answerable, near_miss or
    out_of_corpus (the five articles' off-topic questions count as out of corpus)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        if d.get("answerable", True):
            kind = "answerable"
        else:
            kind = "near_miss" if d.get("kind") == "near_miss" else "out_of_corpus"
        if d.get("kind") in ("near_miss", "out_of_corpus"):
            kind = d["kind"]
        out.append({"id": d["id"], "question": d["question"], "history": d.get("history", []), "kind": kind})
    return out


def collect_eval(r, questions: list[dict], out: Path) -> None:
    """What `ask` sees for each question (its search query, hits and scored
    sentences), one JSON line each, as rag.train_answer.collect does."""
    import dataclasses

    from .train_answer import K

    s = r.settings
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for q in questions:
            query = r.search_query(q["question"], q["history"] or None)
            v = r.embedder.embed([query])[0]
            hits = r.retriever.search(query, K, None, s.retrieval.mode, v)
            ev = r.scorer.score(query, v, hits, s.answer.sentence_dense_weight).items
            f.write(json.dumps({"q": q | {"query": query}, "hits": [dataclasses.asdict(h) for h in hits],
                                "evidence": [dataclasses.asdict(e) for e in ev[:60]]}, sort_keys=True) + "\n")
    tmp.replace(out)


def trade_off(p: np.ndarray, kinds: Sequence[str], rates=(0.01, 0.02, 0.03, 0.05, 0.08, 0.10)) -> list[dict]:
    """Abstention on each unanswerable kind at the threshold that abstains on
    `rate` of this set's answerable questions (for the plot; not a calibration)."""
    pos = np.sort([v for v, k in zip(p, kinds) if k == "answerable"])
    out = []
    for rate in rates:
        t = pos[int(rate * len(pos))]
        row = {"false_abstention": rate}
        for kind in ("near_miss", "out_of_corpus"):
            neg = [v for v, k in zip(p, kinds) if k == kind]
            row[kind] = round(float(np.mean([v < t for v in neg])), 3) if neg else None
        out.append(row)
    return out


def evaluate(cache: Path, weights: Path) -> dict:
    """The hook's figures on both evaluation sets at the shipped threshold."""
    from .core import RAG
    from .embedding import resolve_model
    from .evidence import Evidence
    from .types import Hit

    reader = R.Reader.from_folder(*R.load_weights(weights), resolve_model(R.EMBEDDING_MODEL))
    out = {}
    for name, (corpus, qfile) in EVAL_SETS.items():
        r = RAG.load(ROOT / corpus, cache / f"{name}-index", progress=False)
        records = cache / f"eval-{name}.jsonl.gz"
        questions = eval_questions(ROOT / qfile)
        stamp = records.with_suffix(".sha256")
        want = _h("eval-records/1", json.dumps(questions, sort_keys=True))
        if not records.is_file() or not stamp.is_file() or stamp.read_text() != want:
            collect_eval(r, questions, records)
            stamp.write_text(want)
        rows = []
        with gzip.open(records, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                rows.append((d["q"], [Hit(**h) for h in d["hits"]], [Evidence(**e) for e in d["evidence"]]))
        hook = R.ReaderHook(reader)
        articles = r.corpus.by_id()
        t0 = time.perf_counter()
        verdicts = [hook.p_answerable(q["query"], ev, hits, articles) for q, hits, ev in rows]
        seconds = (time.perf_counter() - t0) / max(len(rows), 1)
        p = np.asarray([v.p_answerable for v in verdicts])
        kinds = [q["kind"] for q, _, _ in rows]
        out[name] = figures(p, kinds, reader.weights.threshold) | {
            "trade_off": trade_off(p, kinds), "ms_per_question": round(seconds * 1000, 2),
            "per_question": [{"id": q["id"], "kind": q["kind"], "p": round(float(v), 4)} for (q, _, _), v in zip(rows, p)],
        }
        log(f"{name}: {json.dumps({k: v for k, v in out[name].items() if k != 'per_question'})}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag.train_reader",
        description="Retrain the reading model and its answerability hook from SQuAD train articles 40+ "
                    "and write rag/models/reader-v1.json with its manifest. Deterministic.",
    )
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/reader"),
                        help="where pairs are cached; must hold train-corpus/ and train-index/ (rag.train_answer's)")
    parser.add_argument("--out", type=Path, default=R.DEFAULT_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    add_false_abstention(parser, FALSE_ABSTENTION)
    parser.add_argument("--evaluate", action="store_true",
                        help="only score both evaluation sets (eval/squad, eval/questions.jsonl) with the weights at --out")
    parser.add_argument("--reuse-reader", type=Path,
                        help="take the reader's arrays from this weight file and refit only the hook (minutes, not a training)")
    parser.add_argument("--json", type=Path, help="with --evaluate: write the figures and per-question p here")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, not {args.epochs}")
    run_unsalted("rag.train_reader", argv)
    if args.evaluate:
        result = evaluate(args.cache, args.out)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return 0
    train(args.cache, args.out, args.false_abstention, args.epochs, args.reuse_reader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
