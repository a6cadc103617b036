"""An evaluation written for people: Markdown tables and PNG plots.

The same tables are printed by `rag eval`; `write_report` adds the
per-question table and the plots. matplotlib loads only when plots are
drawn (and through `Figure`, not pyplot, so no display or global backend is
involved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .evaluate import METRICS, PASSAGE_METRICS, RETRIEVAL_METRICS, UNANSWERABLE, EvalResult, Row

REPORT_FILE = "report.md"
MODES_PLOT = "hit_at_k_by_mode.png"
ARTICLES_PLOT = "metrics_by_article.png"
RAW_PLOT = "raw_vs_repaired_by_article.png"
TRADE_OFF_PLOT = "abstention_trade_off.png"

ARTICLE_METRICS = (
    "hit@1",
    "hit@5",
    "mrr",
    "passage_answer@1",
    "fact_recall",
    "answer_contains_gold",
    "short_f1",
    "citation_validity",
    "citation_precision",
    "false_abstention_rate",
    "abstention_accuracy",
)
LABELS = {
    "hit@1": "hit@1",
    "hit@3": "hit@3",
    "hit@5": "hit@5",
    "mrr": "MRR",
    **{f"passage_answer@{k}": f"passage-answer@{k}" for k in (1, 3, 5)},
    "fact_recall": "fact recall",
    "answer_contains_gold": "answer contains gold",
    "answer_words": "answer length (words)",
    "short_em": "short answer EM",
    "short_f1": "short answer F1",
    "abstention_out_of_corpus": "abstention, out of corpus",
    "abstention_near_miss": "abstention, near miss",
    "abstention_off_topic": "abstention, off topic",
    "answerability_auc": "answerability ROC AUC",
    "answerability_auc_near_miss": "answerability ROC AUC, near misses",
    "citation_validity": "citation validity",
    "citation_precision": "citation precision",
    "abstention_accuracy": "abstention accuracy",
    "false_abstention_rate": "false abstention rate",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p95_ms": "latency p95 (ms)",
}


# --- cells and tables ------------------------------------------------------------


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks as <br>."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def number(name: str, value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if name.endswith("_ms"):
        return f"{value:.1f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def overall_table(result: EvalResult) -> str:
    """The metrics that have something to count (a set without gold short
    answers has no short-answer F1, one without probabilities no AUC)."""
    return table(["metric", "value"], [[name, number(name, v)] for name in METRICS if (v := result.metrics[name]) is not None])


def kinds_table(result: EvalResult) -> str:
    """Per kind of question: how many, the share that abstained (right for
    the unanswerable kinds, a false abstention for the answerable ones), and
    the share of its answers given with the doubt note (rag/calibration.py)."""
    rows = []
    for kind, values in result.per_kind.items():
        answerable = kind in ("answerable", "follow-up")
        extra = values["fact_recall"] if values.get("fact_recall") is not None else values.get("answer_contains_gold")
        rows.append([kind, values["questions"], number("abstained", values["abstained"]),
                     "false abstention" if answerable else "abstention (right)",
                     number("x", extra) if answerable else "", number("x", values.get("doubted"))])
    return table(["kind", "questions", "abstained", "which is", "fact recall / answer contains gold",
                  "answers given with the doubt note"], rows)


def articles_table(result: EvalResult, titles: Mapping[str, str] | None = None, names: Sequence[str] = METRICS) -> str:
    """One row per article (and one for unanswerable questions); a title column when titles are given."""
    names = [m for m in names if any(v.get(m) is not None for v in result.per_article.values())]
    rows = []
    for article, values in result.per_article.items():
        title = [titles.get(article, "")] if titles is not None else []
        rows.append([article, *title, values["questions"], *(number(m, values.get(m)) for m in names)])
    return table(["article", *(["title"] if titles is not None else []), "questions", *names], rows)


def comparison_table(results: Sequence[EvalResult]) -> str:
    names = [m for m in METRICS if any(r.metrics.get(m) is not None for r in results)]
    rows = [[r.mode, r.text, *(number(m, r.metrics[m]) for m in names)] for r in results]
    return table(["retrieval", "text", *names], rows)


def raw_vs_repaired(results: Sequence[EvalResult], mode: str = "hybrid") -> tuple[EvalResult, EvalResult] | None:
    pair = {r.text: r for r in results if r.mode == mode}
    return (pair["repaired"], pair["raw"]) if {"repaired", "raw"} <= set(pair) else None


def raw_vs_repaired_table(repaired: EvalResult, raw: EvalResult) -> str:
    names = ("hit@1", "mrr", "fact_recall", "citation_precision", "false_abstention_rate")
    header = ["article", "questions"]
    for m in names:
        header += [f"{m} repaired", f"{m} raw"]
    rows = []
    for article, values in repaired.per_article.items():
        other = raw.per_article.get(article, {})
        row: list[object] = [article, values["questions"]]
        for m in names:
            row += [number(m, values.get(m)), number(m, other.get(m))]
        rows.append(row)
    return table(header, rows)


def short_ids(ids: Sequence[str]) -> dict[str, str]:
    """"000_b8d8672fd89b6af8" -> "000" when the prefix before "_" is unique
    among `ids`; the full id otherwise."""
    prefixes: dict[str, set[str]] = {}
    for i in ids:
        prefixes.setdefault(i.split("_", 1)[0], set()).add(i)
    return {i: i.split("_", 1)[0] if len(prefixes[i.split("_", 1)[0]]) == 1 else i for i in ids}


def _retrieved(row: Row, short: Mapping[str, str]) -> str:
    """Ranked article ids, gold ones in bold: "**000**, 001, **000**"."""
    return ", ".join(f"**{short[a]}**" if a in row.gold else short[a] for a in row.retrieved) or "(none)"


def _citations(row: Row, short: Mapping[str, str]) -> str:
    parts = []
    for c in row.citations:
        flags = [] if c.valid else ["quote does not match the article"]
        if row.answerable and not c.gold:
            flags.append("not a gold article")
        parts.append(f"[{c.n}] {short.get(c.article_id, c.article_id)} {c.start}-{c.end}" + (f" ({'; '.join(flags)})" if flags else ""))
    return "; ".join(parts)


def _outcome(row: Row) -> str:
    if not row.answerable:
        return "abstained (right)" if row.abstained else "answered, should abstain"
    if row.abstained:
        return "abstained, should answer"
    missed = row.missed
    return "all facts" if not missed else "missed: " + "; ".join(" or ".join(group) for group in missed)


def questions_table(result: EvalResult, short: Mapping[str, str]) -> str:
    rows = []
    for r in result.rows:
        question = r.question if not r.history else f"{r.question}\n(after: {' / '.join(r.history)})"
        rows.append([r.id, question, _retrieved(r, short), r.answer, _citations(r, short), _outcome(r)])
    return table(["id", "question", "retrieved articles", "answer", "citations", "facts"], rows)


# --- the report ----------------------------------------------------------------------


def write_report(
    out_dir: str | Path,
    result: EvalResult,
    *,
    source: str = "",
    titles: Mapping[str, str] | None = None,
    comparison: Sequence[EvalResult] | None = None,
    modes: Mapping[str, Mapping[str, float | None]] | None = None,
) -> list[Path]:
    """Write report.md and the plots into `out_dir`; returns the files written.

    comparison: the side-by-side runs, when made. modes: retrieval metrics by
    label for the hit@k plot when there is no comparison.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    titles = titles or {}
    if comparison:
        by_label = {f"{r.mode}, {r.text}": r.metrics for r in comparison}
    else:
        by_label = dict(modes or {}) or {result.mode: result.metrics}
    written = [plot_modes(by_label, out / MODES_PLOT), plot_articles(result, out / ARTICLES_PLOT)]
    pair = raw_vs_repaired(comparison or [], result.mode)
    if pair:
        written.append(plot_raw_vs_repaired(*pair, out / RAW_PLOT))
    trade_off = plot_trade_off(result, out / TRADE_OFF_PLOT)
    if trade_off:
        written.append(trade_off)

    ids = [*titles, *(a for r in result.rows for a in (*r.gold, *r.retrieved))]
    short = short_ids(list(dict.fromkeys(ids)))
    n_answerable = sum(r.answerable for r in result.rows)
    parts = [
        "# Evaluation report",
        "",
        f"Questions: {source + ', ' if source else ''}{len(result.rows)} questions ({n_answerable} answerable, "
        f"{len(result.rows) - n_answerable} unanswerable). Retrieval: {result.mode}; answers: {result.answer_mode}; "
        f"k = {result.k}; {result.text} text. Retrieval metrics rank max(k, 5) passages; latency is `ask` alone, "
        "with the query cache off.",
        "",
        "## Overall",
        "",
        overall_table(result),
        "",
        "## By kind of question",
        "",
        kinds_table(result),
        "",
        *([f"![abstention trade-off]({TRADE_OFF_PLOT})", "",
           "Abstaining below a threshold on the answers' probability of being answerable: the share of "
           "unanswerable questions that abstain (by kind) against the share of answerable ones that do; "
           "the dot is where the product stands.", ""] if trade_off else []),
        "## Per article",
        "",
        "Answerable questions under each gold article (a question with several counts for each); "
        f"unanswerable questions under {UNANSWERABLE}. n/a: the metric has nothing to count there.",
        "",
        articles_table(result, titles),
        "",
        f"![metrics per article]({ARTICLES_PLOT})",
        "",
    ]
    if comparison:
        parts += [
            "## Side by side",
            "",
            "Each retrieval mode on the repaired text"
            + (" and on the raw text (the corpus indexed without the text repair)." if any(r.text == "raw" for r in comparison) else "."),
            "",
            comparison_table(comparison),
            "",
        ]
        if pair:
            parts += [
                f"### Raw against repaired text, per article ({result.mode})",
                "",
                raw_vs_repaired_table(*pair),
                "",
                f"![raw against repaired text]({RAW_PLOT})",
                "",
            ]
    parts += [
        "## Retrieval by mode",
        "",
        *([] if comparison else ["Retrieval only, on the same index and questions (answers were made in one mode).", ""]),
        f"![hit@k by retrieval mode]({MODES_PLOT})",
        "",
        "## Questions",
        "",
        "Retrieved articles in rank order, gold articles in bold; citations as article and character offsets.",
        "",
        questions_table(result, short),
        "",
    ]
    report = out / REPORT_FILE
    report.write_text("\n".join(parts), encoding="utf-8")
    return [report, *written]


# --- plots ------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_modes(by_label: Mapping[str, Mapping[str, float | None]], path: Path) -> Path:
    """Grouped bars: hit@1, hit@3, hit@5 and MRR (and passage-answer@k when
    the questions have gold short answers), one bar per retrieval mode (and text)."""
    names = [*RETRIEVAL_METRICS, *(m for m in PASSAGE_METRICS if any(v.get(m) is not None for v in by_label.values()))]
    fig = _figure(8 + 1.2 * (len(names) - len(RETRIEVAL_METRICS)), 4.5)
    ax = fig.add_subplot()
    labels = list(by_label)
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        values = [by_label[label].get(m) or 0.0 for m in names]
        xs = [x + (i - (len(labels) - 1) / 2) * width for x in range(len(names))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(names)), [LABELS[m] for m in names])
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("share of answerable questions / MRR")
    ax.set_title("Retrieval by mode")
    ax.legend(loc="upper center", fontsize=8, ncol=min(len(labels), 3))
    fig.savefig(path)
    return path


def plot_articles(result: EvalResult, path: Path) -> Path:
    """A grid of metrics (rows) by article (columns), each cell annotated."""
    import numpy as np

    articles = list(result.per_article)
    short = short_ids([a for a in articles if a != UNANSWERABLE])
    # Only the metrics this question set has (no fact recall without facts ...).
    names = [m for m in ARTICLE_METRICS if any(v.get(m) is not None for v in result.per_article.values())]
    grid = np.full((len(names), len(articles)), np.nan)
    for j, article in enumerate(articles):
        for i, m in enumerate(names):
            value = result.per_article[article].get(m)
            if value is not None:
                grid[i, j] = value
    fig = _figure(1.4 * len(articles) + 3, 0.45 * len(names) + 1.6)
    ax = fig.add_subplot()
    # Colour says good (green) or bad (red): for the false abstention rate, low is good.
    colour = grid.copy()
    if "false_abstention_rate" in names:
        colour[names.index("false_abstention_rate")] *= -1
        colour[names.index("false_abstention_rate")] += 1
    # Below 0.5 is plainly bad; starting the scale there keeps 0.7 and 0.95 apart.
    ax.imshow(np.ma.masked_invalid(colour), cmap=_colormap(), vmin=0.5, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(articles)), [short.get(a, a) for a in articles])
    ax.set_yticks(range(len(names)), [LABELS[m] for m in names])
    ax.set_title(f"Metrics per article ({result.mode}, {result.text} text; green is good)")
    fig.savefig(path)
    return path


def plot_raw_vs_repaired(repaired: EvalResult, raw: EvalResult, path: Path) -> Path:
    """Fact recall and hit@1 per article, repaired text beside raw text."""
    articles = [a for a in repaired.per_article if a != UNANSWERABLE]
    short = short_ids(articles)
    series = [(f"{LABELS[m]}, {name}", m, res) for m in ("hit@1", "fact_recall") for name, res in (("repaired", repaired), ("raw", raw))]
    fig = _figure(1.6 * len(articles) + 3, 4.5)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for i, (label, m, res) in enumerate(series):
        values = [res.per_article.get(a, {}).get(m) or 0.0 for a in articles]
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(articles))]
        ax.bar(xs, values, width, label=label)
    ax.set_xticks(range(len(articles)), [short[a] for a in articles])
    ax.set_ylim(0, 1.25)
    ax.set_title(f"Raw against repaired text ({repaired.mode})")
    ax.legend(loc="upper center", fontsize=8, ncol=2)
    fig.savefig(path)
    return path


def plot_trade_off(result: EvalResult, path: Path) -> Path | None:
    """Abstention on unanswerable questions (all, and per kind) against false
    abstention, as the threshold on the answers' probability moves; None
    (nothing drawn) when the answers carry no probability."""
    from .evaluate import abstention_trade_off

    scored = [r for r in result.rows if r.answerable_p is not None]
    answerable = [r for r in scored if r.answerable]
    kinds = sorted({r.kind for r in scored if not r.answerable})
    if not answerable or not kinds:
        return None
    fig = _figure(6.5, 5)
    ax = fig.add_subplot()
    noted = any(r.doubted for r in scored)
    groups = [("all unanswerable", [r for r in scored if not r.answerable])]
    groups += [(kind, [r for r in scored if not r.answerable and r.kind == kind]) for kind in kinds] if len(kinds) > 1 else []
    for label, negatives in groups:
        rows = answerable + negatives
        points = abstention_trade_off([r.answerable_p for r in rows], [r.answerable for r in rows])
        ax.plot([p.false_abstention for p in points], [p.abstention for p in points], label=label, drawstyle="steps-post")
        color = ax.lines[-1].get_color()
        actual_false = sum(r.abstained for r in answerable) / len(answerable)
        ax.plot([actual_false], [sum(r.abstained for r in negatives) / len(negatives)], "o", color=color)
        if noted:
            # Where the answers given with the doubt note would put it, were they abstentions.
            ax.plot([sum(r.abstained or r.doubted for r in answerable) / len(answerable)],
                    [sum(r.abstained or r.doubted for r in negatives) / len(negatives)], "x", color=color)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false abstention (share of answerable questions)")
    ax.set_ylabel("abstention on unanswerable questions")
    ax.set_title("Abstention trade-off (dot: the product's own decisions;\ncross: abstentions and answers given with the doubt note)"
                 if noted else "Abstention trade-off (dot: the product's own decisions)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path)
    return path


def _colormap():
    import matplotlib

    return matplotlib.colormaps["RdYlGn"].with_extremes(bad="#dddddd")  # grey: n/a
