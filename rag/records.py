"""Chunk and sentence records stored column by column, read without parsing.

The index kept its records as JSON Lines: one object per chunk and per
sentence, parsed and turned into a dataclass each on every load. At a
million chunks (and three million sentences) that is tens of seconds before
the first answer. Here each field of a record kind is one numpy array in
one `.npz` file (uncompressed: the arrays are read as they lie):

* a whole-number field: an int64 array;
* a text field with few distinct values (article ids): the distinct values
  and an int32 code per record;
* any other text field (chunk ids, embedding hashes): the UTF-8 of every
  value in one byte array, and each value's end offset.

`RecordTable` is a read-only sequence over those columns: a record is made
when it is asked for (a hit, a sentence of a hit), not at load, and the
grouping the backends need (rows by article) is computed on the arrays.
Texts are encoded with "surrogatepass", so a file name that was not valid
UTF-8 (decoded by Python with surrogate escapes) comes back unchanged.
"""

from __future__ import annotations

import dataclasses
import typing
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import numpy as np

from .errors import StoreError

R = TypeVar("R")
LAYOUT = 1  # the arrays' names and meaning below; a reader refuses another
_ENCODING, _ERRORS = "utf-8", "surrogatepass"


def _field_kinds(kind: type) -> dict[str, type]:
    hints = typing.get_type_hints(kind)
    out = {}
    for f in dataclasses.fields(kind):
        t = hints[f.name]
        if t not in (int, str):
            raise TypeError(f"{kind.__name__}.{f.name} is {t}: a record table stores int and str fields only")
        out[f.name] = t
    return out


def _encode_texts(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [v.encode(_ENCODING, _ERRORS) for v in values]
    ends = np.cumsum(np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded)), dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), ends


class _Texts:
    """Texts packed in one byte array; decoded one at a time."""

    def __init__(self, blob: np.ndarray, ends: np.ndarray) -> None:
        self._blob = blob.tobytes()
        self._ends = ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        start = int(self._ends[i - 1]) if i else 0
        return self._blob[start : int(self._ends[i])].decode(_ENCODING, _ERRORS)

    def all(self) -> list[str]:
        return [self[i] for i in range(len(self))]


class RecordTable(Sequence[R], Generic[R]):
    """Records of one frozen dataclass kind, held as columns."""

    def __init__(self, kind: type[R], n: int, ints: dict[str, np.ndarray], coded: dict[str, tuple[np.ndarray, list[str]]],
                 texts: dict[str, _Texts]) -> None:
        self.kind, self._n = kind, n
        self._ints = ints
        self._coded = coded
        self._texts = texts
        self._names = [f.name for f in dataclasses.fields(kind)]

    # --- writing ------------------------------------------------------------

    @staticmethod
    def save(path: Path, kind: type, records: Sequence[Any]) -> None:
        """Write `records` (all of `kind`) as one uncompressed .npz file."""
        arrays: dict[str, np.ndarray] = {"layout": np.array([LAYOUT, len(records)], dtype=np.int64)}
        for name, t in _field_kinds(kind).items():
            values = [getattr(r, name) for r in records]
            if t is int:
                arrays[f"int.{name}"] = np.array(values, dtype=np.int64).reshape(len(values))
                continue
            distinct = list(dict.fromkeys(values))
            if len(distinct) * 2 <= len(values):  # repeated values (article ids): a code per record
                code = {v: i for i, v in enumerate(distinct)}
                arrays[f"codes.{name}"] = np.array([code[v] for v in values], dtype=np.int32).reshape(len(values))
                arrays[f"values.{name}"], arrays[f"values_ends.{name}"] = _encode_texts(distinct)
            else:
                arrays[f"text.{name}"], arrays[f"text_ends.{name}"] = _encode_texts(values)
        with path.open("wb") as f:
            np.savez(f, **arrays)

    # --- reading ------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, kind: type[R]) -> "RecordTable[R]":
        """The table in `path`; StoreError (one line, naming the file) when it cannot be read."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise StoreError(f"{path} cannot be read ({type(e).__name__}: {e})", fix="run `rag index --rebuild`") from e
        return cls._from_arrays(path, kind, arrays)

    @classmethod
    def _from_arrays(cls, path: Path, kind: type[R], arrays: dict[str, np.ndarray]) -> "RecordTable[R]":
        def bad(what: str) -> StoreError:
            return StoreError(f"{path} is not a {kind.__name__} table this version reads ({what})",
                              fix="run `rag index --rebuild`")

        head = arrays.get("layout")
        if head is None or head.shape != (2,) or int(head[0]) != LAYOUT:
            raise bad(f"layout {None if head is None else head.tolist()}, expected [{LAYOUT}, n]")
        n = int(head[1])
        ints, coded, texts = {}, {}, {}
        for name, t in _field_kinds(kind).items():
            if t is int:
                column = arrays.get(f"int.{name}")
                if column is None or column.shape != (n,):
                    raise bad(f"field {name!r} missing or of the wrong length")
                ints[name] = column
            elif f"codes.{name}" in arrays:
                codes, values = arrays[f"codes.{name}"], _texts(arrays, f"values.{name}", f"values_ends.{name}", bad)
                if codes.shape != (n,) or (n and (int(codes.min()) < 0 or int(codes.max()) >= len(values))):
                    raise bad(f"field {name!r}: codes out of range")
                coded[name] = (codes, values.all())
            else:
                column = _texts(arrays, f"text.{name}", f"text_ends.{name}", bad)
                if len(column) != n:
                    raise bad(f"field {name!r} missing or of the wrong length")
                texts[name] = column
        return cls(kind, n, ints, coded, texts)

    # --- the sequence ---------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def _record(self, i: int) -> R:
        values = {}
        for name in self._names:
            if name in self._ints:
                values[name] = int(self._ints[name][i])
            elif name in self._coded:
                codes, distinct = self._coded[name]
                values[name] = distinct[int(codes[i])]
            else:
                values[name] = self._texts[name][i]
        return self.kind(**values)

    @overload
    def __getitem__(self, i: int) -> R: ...
    @overload
    def __getitem__(self, i: slice) -> list[R]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._record(j) for j in range(*i.indices(self._n))]
        i = int(i)  # numpy integers too
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"record {i} of {self._n}")
        return self._record(i)

    def __iter__(self) -> Iterator[R]:
        return (self._record(i) for i in range(self._n))

    def int_column(self, name: str) -> np.ndarray:
        """A whole-number field of every record, as an int64 array."""
        return self._ints[name]

    def rows_by(self, name: str) -> dict[str, np.ndarray]:
        """Each value of a text field -> the rows holding it, in row order."""
        if name in self._coded:
            codes, distinct = self._coded[name]
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(distinct) + 1))
            return {v: order[bounds[c] : bounds[c + 1]] for c, v in enumerate(distinct) if bounds[c + 1] > bounds[c]}
        return rows_by(self, name)


def _texts(arrays: dict[str, np.ndarray], blob: str, ends: str, bad) -> _Texts:
    b, e = arrays.get(blob), arrays.get(ends)
    if b is None or e is None or b.ndim != 1 or e.ndim != 1:
        raise bad(f"{blob} missing")
    if len(e) and (int(e[-1]) != len(b) or bool(np.any(np.diff(e) < 0)) or int(e[0]) < 0):
        raise bad(f"{ends} does not fit {blob}")
    return _Texts(b, e)


def rows_by(records: Sequence[Any], name: str) -> dict[str, np.ndarray]:
    """Each value of field `name` -> the rows holding it, in row order (any sequence of records)."""
    if isinstance(records, RecordTable):
        return records.rows_by(name)
    rows: dict[str, list[int]] = {}
    for row, r in enumerate(records):
        rows.setdefault(getattr(r, name), []).append(row)
    return {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}
