"""Read the corpus folder into Articles: files, metadata, repair, and the
files that have to be skipped (each with a reason a person can act on).

A bad file never stops the others from being read: it is skipped with a
warning and the rest of the corpus is indexed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as distributions
from pathlib import Path

from .errors import CorpusError
from .markdown_text import markdown_to_text
from .repair import Repaired, repair_pages, repair_text
from .settings import IndexSettings
from .types import Article, RepairReport

log = logging.getLogger("rag")

METADATA_FILE = "metadata.json"
TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
SUFFIXES = TEXT_SUFFIXES | {".pdf"}
METADATA_KEYS = {"title", "title_is_descriptive", "author", "publisher", "date", "notes"}
# Above this share of damaged-looking characters after repair, the text is
# probably still unreadable in places and the user should look at the file.
GARBLED_WARNING = 0.002


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class FileRead:
    """What reading one file gave, before metadata.json is applied: the part
    worth keeping between runs, because repair costs about a second per MB."""

    content_hash: str  # sha256 of the file's bytes
    repaired: bool  # read with the text repair on
    text: str
    report: RepairReport
    meta: dict[str, str]  # what the file itself carries (Markdown front matter)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "code": reader_fingerprint()}

    @classmethod
    def from_json(cls, data: dict) -> "FileRead | None":
        """None for a read made by another version of the reading code."""
        if data.get("code") != reader_fingerprint():
            return None
        return cls(data["content_hash"], data["repaired"], data["text"], RepairReport(**data["report"]), data["meta"])


# The modules that turn file bytes into an article's text: a change to any of
# them (a repair rule, the sentence end that joining lines relies on, the
# Markdown reading) makes kept texts (rag/store.py known_reads) stale.
# settings.py holds the file-size limit that decides which files are read.
READER_MODULES = ("ingest.py", "repair.py", "sentences.py", "markdown_text.py", "types.py", "settings.py")
READER_DISTRIBUTIONS = ("ftfy", "pypdf", "markdown-it-py")


def code_fingerprint(modules: tuple[str, ...], dists: tuple[str, ...]) -> str:
    """A short hash of the package's `modules` (file names in rag/) and the
    versions of the distributions `dists`: what a kept result was made by."""
    h = hashlib.sha256()
    for module in modules:
        h.update(Path(__file__).with_name(module).read_bytes())
    for dist in dists:
        try:
            h.update(f"{dist}={distributions.version(dist)}".encode())
        except distributions.PackageNotFoundError:
            h.update(f"{dist}=none".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def reader_fingerprint() -> str:
    """Names the code that turns file bytes into text: READER_MODULES and the
    libraries they call. A read kept from other code is read again."""
    return code_fingerprint(READER_MODULES, READER_DISTRIBUTIONS)


@dataclass(frozen=True)
class Corpus:
    folder: Path
    articles: tuple[Article, ...]
    skipped: tuple[Skipped, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    reads: tuple[FileRead, ...] = ()  # one per article, in order
    reused_reads: int = 0  # files whose text came from `known` instead of being repaired again

    def by_id(self) -> dict[str, Article]:
        return {a.id: a for a in self.articles}


class UnreadableFile(Exception):
    """A corpus file that cannot become an article; the message says why and what to do."""


# --- reading one file ---------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile(f"{name} looks binary (it holds NUL bytes): remove it or convert it to .txt")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise UnreadableFile(
                f"{name} is not valid UTF-16 (bad bytes at offset {e.start}): re-save it as UTF-8"
            ) from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnreadableFile(
            f"{name} is not valid UTF-8 (bad byte at offset {e.start}): re-save it as UTF-8"
        ) from e


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def _markdown(text: str) -> tuple[str, dict[str, str]]:
    """The plain text of a Markdown file (see rag/markdown_text.py) and the
    metadata of its YAML-style front matter."""
    meta: dict[str, str] = {}
    m = _FRONT_MATTER.match(text)
    if m:
        for line in m.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in METADATA_KEYS:
                meta[key.strip().lower()] = value.strip().strip("\"'")
        text = text[m.end() :]
    return markdown_to_text(text), meta


def _pdf(path: Path) -> list[str]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as e:  # pragma: no cover - pypdf is a dependency
        raise UnreadableFile(f"{path.name}: reading PDF needs pypdf: run `pip install pypdf`") from e
    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise UnreadableFile(f"{path.name} is not a readable PDF ({e}): re-export it or convert it to .txt") from e
    return pages


def _unrepaired(text: str) -> Repaired:
    return Repaired(text, RepairReport())


def read_file(path: Path, repair: bool = True, data: bytes | None = None) -> tuple[Repaired, dict[str, str], bytes]:
    """The repaired text of one corpus file, metadata it carries, and its bytes.

    repair=False keeps the text as extracted (to measure what the repair is
    worth); the report then counts nothing. `data`: the file's bytes, when
    the caller has read them already.
    """
    data = path.read_bytes() if data is None else data
    meta: dict[str, str] = {}
    if path.suffix.lower() == ".pdf":
        pages = _pdf(path)
        if not any(p.strip() for p in pages):
            raise UnreadableFile(
                f"{path.name} has no text layer (a scanned PDF?): run OCR on it or convert it to .txt"
            )
        return (repair_pages(pages) if repair else _unrepaired("\n\n".join(pages))), meta, data
    text = _decode(data, path.name)
    if path.suffix.lower() in {".md", ".markdown"}:
        text, meta = _markdown(text)
    if not text.strip():
        raise UnreadableFile(f"{path.name} is empty (no text after reading): add text or remove the file")
    return (repair_text(text) if repair else _unrepaired(text)), meta, data


# --- metadata -------------------------------------------------------------------


def load_metadata(folder: Path) -> tuple[dict[str, dict], list[str]]:
    """metadata.json: {article_id: {title, author, publisher, date, ...}}; optional."""
    path = folder / METADATA_FILE
    if not path.exists() and not path.is_symlink():
        return {}, []
    try:
        data = json.loads(_read_metadata_text(path))
    except UnicodeDecodeError as e:
        # Saved in another encoding (Latin-1, Windows-1252): the JSON may be
        # fine, so "fix it" would send the user looking for a syntax error.
        return {}, [f"{path} is not valid UTF-8 (bad byte at offset {e.start}): re-save it as UTF-8; "
                    "titles are taken from the texts meanwhile"]
    except json.JSONDecodeError as e:
        return {}, [f"{path} is not valid JSON ({e}): fix it; titles are taken from the texts meanwhile"]
    except UnreadableFile as e:
        return {}, [f"{e}; titles are taken from the texts meanwhile"]
    if not isinstance(data, dict):
        return {}, [f"{path} must hold an object of article ids: fix it; titles are taken from the texts meanwhile"]
    warnings = []
    for article_id, entry in data.items():
        if not isinstance(entry, dict):
            warnings.append(f"{path}: entry {article_id!r} is not an object: it is ignored")
            continue
        unknown = sorted(set(entry) - METADATA_KEYS)
        if unknown:
            warnings.append(
                f"{path}: entry {article_id!r} has unknown key(s) {', '.join(unknown)}: "
                f"valid keys are {', '.join(sorted(METADATA_KEYS))}"
            )
        for key, value in list(entry.items()):
            expected = bool if key == "title_is_descriptive" else str
            if value is not None and not isinstance(value, expected):
                warnings.append(
                    f"{path}: entry {article_id!r} key {key!r} must be "
                    f"{'true or false' if expected is bool else 'text or null'}, not {type(value).__name__}: it is ignored"
                )
                del entry[key]
    return {normalize_id(k): v for k, v in data.items() if isinstance(v, dict)}, warnings


def _read_metadata_text(path: Path) -> str:
    """metadata.json's text; UnreadableFile (the warning's first half) when
    it is a folder, a broken link or not readable."""
    if path.is_dir():
        raise UnreadableFile(f"{path} is a folder, not a file: replace it with the metadata file or remove it")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise UnreadableFile(f"{path} cannot be read ({e.strerror or e}): check that it exists and its permissions") from e


def _first_lines(text: str, n: int) -> list[str]:
    """The first `n` non-blank lines of `text`, stripped (without splitting all of it)."""
    lines: list[str] = []
    for m in re.finditer(r"[^\n]+", text):
        if m.group(0).strip():
            lines.append(m.group(0).strip())
            if len(lines) == n:
                break
    return lines


def _reads_as_title(line: str) -> bool:
    return 0 < len(line) <= 120 and len(line.split()) <= 16 and not line.endswith((".", "?", "!"))


def _guess_title(text: str, article_id: str) -> tuple[str, bool]:
    """The first line when it reads as a title; after a `By ...` line, the
    line below it (bylines stand above titles too); otherwise the file stem."""
    lines = _first_lines(text, 2)
    if lines and _BYLINE.match(lines[0] + "\n"):
        lines = lines[1:]
    if lines and _reads_as_title(lines[0]):
        return lines[0], False
    return article_id, True


_BYLINE = re.compile(r"\A\s*By\s+([A-Z][^\n]{2,60})\n")


def _guess_author(text: str) -> str | None:
    m = _BYLINE.match(text)
    return m.group(1).strip() if m else None


# --- files that cannot be indexed as they are ----------------------------------


def normalize_id(article_id: str) -> str:
    """An article id in Unicode NFC: macOS and some editors write names
    decomposed ("e" + combining accent), a keyboard types them composed, and
    the two must name the same article."""
    return unicodedata.normalize("NFC", article_id)


def printable_name(name: str) -> str:
    """A file name as it can be printed and stored: undecodable bytes as
    \\xNN (they reach Python as lone surrogates), control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in raw)


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _broken_link(path: Path) -> str | None:
    """Why a symbolic link leads to no file; None for anything else."""
    if not path.is_symlink() or path.exists():
        return None
    name, target = printable_name(path.name), printable_name(os.readlink(path))
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        return f"{name} is a symbolic link to {target}, which does not exist: fix the link or remove it"
    except (OSError, RuntimeError):  # ELOOP; RuntimeError before Python 3.13
        pass
    return f"{name} is a symbolic link that loops (it points to {target}): fix the link or remove it"


def _mb(megabytes: float) -> str:
    return f"{megabytes:,.1f}" if megabytes >= 1 else f"{megabytes:.3f}"


def _size_limit_reason(name: str, size: int, max_file_mb: float) -> str | None:
    """Why a file of `size` bytes (of text) is too large to index; None when it is not."""
    if size <= max_file_mb * 1_000_000:
        return None
    return (
        f"{name} holds {_mb(size / 1_000_000)} MB of text, over the per-file limit of {max_file_mb:g} MB "
        f"(a MB of text took 8 minutes to index here): split it into articles, or raise the limit "
        f"(RAG_MAX_FILE_MB={max(1, int(size / 1_000_000) + 1)}, or Settings(max_file_mb=...))"
    )


def _list_files(folder: Path, max_file_mb: float) -> tuple[list[Path], list[Skipped]]:
    """The corpus folder's files that can be read, oldest first, and the ones
    that cannot (each with its reason): broken or looping links, names that
    are not valid UTF-8, text files over the size limit.

    Oldest first (by modification time, then name): of two files with the same
    id or text, the one that was there first stays the article, so a copy
    dropped in later does not take over its id and its citations.
    """
    readable: list[tuple[int, str, Path]] = []
    skipped: list[Skipped] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name == METADATA_FILE:
            continue  # metadata.json: load_metadata reports its own problems
        name = printable_name(p.name)
        broken = _broken_link(p)
        if broken:
            skipped.append(Skipped(name, broken))
            continue
        if not p.is_file():
            continue  # a subfolder: not part of the corpus
        if not _valid_name(p.name):
            skipped.append(Skipped(name, f"{name} has a name that is not valid UTF-8 (the bytes shown as \\xNN): rename it"))
            continue
        try:
            stat = p.stat()
        except OSError as e:
            skipped.append(Skipped(name, f"{name} cannot be read ({e.strerror}): check its permissions"))
            continue
        # A PDF's size on disk says little about its text (images, fonts): its
        # extracted text is measured instead, once read.
        too_large = p.suffix.lower() in TEXT_SUFFIXES and _size_limit_reason(name, stat.st_size, max_file_mb)
        if too_large:
            skipped.append(Skipped(name, too_large))
            continue
        readable.append((stat.st_mtime_ns, p.name, p))
    return [p for _, _, p in sorted(readable)], skipped


def _metadata_without_file(metadata: Mapping[str, dict], ids: set[str]) -> list[str]:
    """A metadata entry whose file is missing is usually a renamed file whose
    title and author are now lost: say so rather than ignore it."""
    return [
        f"{METADATA_FILE}: entry {article_id!r} matches no file in the corpus: "
        "fix the id (a file's name without its extension) or remove the entry"
        for article_id in sorted(set(metadata) - ids)
    ]


# --- the whole corpus -----------------------------------------------------------


def load_corpus(
    folder: Path,
    repair: bool = True,
    known: Mapping[str, FileRead] | None = None,
    max_file_mb: float = IndexSettings.max_file_mb,
) -> Corpus:
    """Read every article in `folder`; raise CorpusError when none can be read.

    repair=False reads the text as extracted, without the text repair.
    known: earlier reads by content hash (the index keeps them); a file whose
    bytes match one is not decoded and repaired again.
    max_file_mb: files holding more text than this are skipped (IndexSettings.max_file_mb).
    """
    known = known or {}
    reused = 0
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(
            f"corpus folder {folder} does not exist: create it and put .txt, .md or .pdf articles in it"
        )
    files, skipped = _list_files(folder, max_file_mb)
    unlisted = len(skipped)
    candidates = [p for p in files if p.suffix.lower() in SUFFIXES]
    metadata, warnings = load_metadata(folder)
    # Every file of a supported type counts, skipped or not: its entry is not lost.
    present = {normalize_id(p.stem) for p in folder.iterdir() if p.suffix.lower() in SUFFIXES}
    warnings += _metadata_without_file(metadata, present)
    for p in files:
        if p.suffix.lower() not in SUFFIXES and p.name != METADATA_FILE:
            skipped.append(Skipped(p.name, f"{p.name} has an unsupported type: use .txt, .md or .pdf"))

    articles: list[Article] = []
    reads: list[FileRead] = []
    seen_ids: dict[str, str] = {}
    seen_text: dict[str, str] = {}
    for path in candidates:
        article_id = normalize_id(path.stem)
        if article_id in seen_ids:
            skipped.append(Skipped(path.name, f"{path.name} has the same id as {seen_ids[article_id]}: rename one of them"))
            continue
        try:
            data = path.read_bytes()
            content_hash = hashlib.sha256(data).hexdigest()
            earlier = known.get(content_hash)
            if earlier is not None and earlier.repaired == repair:
                read, reused = earlier, reused + 1
            else:
                repaired_now, file_meta, _ = read_file(path, repair, data)
                read = FileRead(content_hash, repair, repaired_now.text, repaired_now.report, file_meta)
        except UnreadableFile as e:
            skipped.append(Skipped(path.name, str(e)))
            continue
        except OSError as e:
            skipped.append(Skipped(path.name, f"{path.name} cannot be read ({e.strerror}): check its permissions"))
            continue
        repaired, file_meta = Repaired(read.text, read.report), read.meta
        too_large = _size_limit_reason(path.name, len(read.text.encode()), max_file_mb)
        if too_large:  # a PDF, whose size on disk did not tell
            skipped.append(Skipped(path.name, too_large))
            continue
        text_hash = hashlib.sha256(repaired.text.encode()).hexdigest()
        if text_hash in seen_text:
            skipped.append(Skipped(path.name, f"{path.name} duplicates {seen_text[text_hash]}: remove one of them"))
            continue
        seen_ids[article_id] = path.name
        seen_text[text_hash] = path.name
        reads.append(read)

        meta = {**file_meta, **metadata.get(article_id, {})}
        title, descriptive = _guess_title(repaired.text, article_id)
        if meta.get("title"):
            title, descriptive = str(meta["title"]), bool(meta.get("title_is_descriptive", False))
        if repaired.report.garbled_share > GARBLED_WARNING:
            warnings.append(
                f"{path.name} still looks garbled after repair ({repaired.report.garbled_share:.1%} of characters): "
                "check the extraction; it is indexed as it is"
            )
        articles.append(
            Article(
                id=article_id,
                title=title,
                author=meta.get("author") or _guess_author(repaired.text),
                publisher=meta.get("publisher"),
                date=meta.get("date"),
                source=path.name,
                text=repaired.text,
                title_is_descriptive=descriptive,
                content_hash=content_hash,
                repair=repaired.report,
            )
        )
    # Read oldest first (see _list_files); listed in name order, as before.
    order = sorted(range(len(articles)), key=lambda i: articles[i].source)
    articles, reads = [articles[i] for i in order], [reads[i] for i in order]
    skipped.sort(key=lambda s: s.source)
    for s in skipped:
        log.warning("skipped %s", s.reason)
    for w in warnings:
        log.warning("%s", w)
    if not articles:
        if not candidates and not unlisted:
            raise CorpusError(f"corpus folder {folder} holds no .txt, .md or .pdf article: add some")
        raise CorpusError(
            f"no article in {folder} could be read ({len(skipped)} skipped; first: {skipped[0].reason})"
        )
    return Corpus(folder, tuple(articles), tuple(skipped), tuple(warnings), tuple(reads), reused)
