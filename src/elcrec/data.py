"""Data in: readers, benchmark files, the synthetic default, the leave-one-out
split, and the vectorised batches (negatives and augmented views) that feed
training.

Internally items are 1..N (0 is padding) and users 0..U-1; the original ids
travel with the data (``Interactions.item_ids`` / ``user_ids``) so that every
answer can be given back in the user's own ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from elcrec._io import atomic_write, atomic_write_text
from elcrec.config import BENCHMARKS, DataConfig

BENCHMARK_SHA256 = {
    "Beauty": "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
    "Sports_and_Outdoors": "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
    "Toys_and_Games": "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
    "Yelp": "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed",
}
# The public copy the ICLRec authors distribute (the files are unchanged there).
BENCHMARK_URL = "https://raw.githubusercontent.com/salesforce/ICLRec/master/data/{name}.txt"
MIN_SPLIT_LEN = 3  # train input may be empty, but validation and test need an item each


class DataError(ValueError):
    """Input data that cannot be used; the message names the file and line or column."""


# --------------------------------------------------------------------------- #
# Interactions: chronological item sequences per user, with the id mapping.
# --------------------------------------------------------------------------- #
@dataclass
class Interactions:
    """Per-user chronological sequences over internal item ids 1..N."""

    user_ids: list  # original user id of internal user u
    item_ids: list  # original item id of internal item i is item_ids[i - 1]
    flat: np.ndarray  # all sequences concatenated (int64)
    offsets: np.ndarray  # sequence u is flat[offsets[u]:offsets[u + 1]]
    name: str = "data"
    planted_intents: np.ndarray | None = None  # synthetic data only
    _touched: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, u: int) -> np.ndarray:
        return self.flat[self.offsets[u] : self.offsets[u + 1]]

    @classmethod
    def from_sequences(
        cls, users: list, sequences: list[list], name: str = "data", sort_ids: bool = True
    ) -> Interactions:
        """Map original ids to contiguous internal ids (sorted order when the ids sort)."""
        uniq = {item for seq in sequences for item in seq}
        try:
            item_ids = sorted(uniq) if sort_ids else list(uniq)
        except TypeError:  # mixed types: keep first-seen order
            item_ids = list(dict.fromkeys(item for seq in sequences for item in seq))
        index = {item: i + 1 for i, item in enumerate(item_ids)}
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter(
            (index[item] for seq in sequences for item in seq), dtype=np.int64, count=offsets[-1]
        )
        return cls(list(users), item_ids, flat, offsets, name=name)

    def subset(self, keep: np.ndarray) -> Interactions:
        """The interactions flagged in ``keep`` (one flag per interaction);
        users and items left with none are dropped and the rest renumbered,
        keeping their order."""
        lengths = self.lengths
        users = np.repeat(np.arange(self.n_users), lengths)
        new_lengths = np.bincount(users[keep], minlength=self.n_users)
        kept_users = np.flatnonzero(new_lengths)
        kept_items = np.bincount(self.flat[keep], minlength=self.n_items + 1)[1:] > 0
        new_id = np.cumsum(kept_items)  # item i (1-based) becomes new_id[i - 1]
        offsets = np.zeros(len(kept_users) + 1, dtype=np.int64)
        np.cumsum(new_lengths[kept_users], out=offsets[1:])
        return Interactions(
            _take(self.user_ids, kept_users),
            _take(self.item_ids, np.flatnonzero(kept_items)),
            new_id[self.flat[keep] - 1],
            offsets,
            name=self.name,
            planted_intents=None
            if self.planted_intents is None
            else self.planted_intents[kept_users],
        )

    def touched_keys(self) -> np.ndarray:
        """Sorted keys user * (N + 1) + item of every (user, item) pair that
        occurs: negative sampling's "has the user touched this item?" look-up.
        A memory-mapped store keeps them on disk (saved with it)."""
        if self._touched is None:  # (in place: one array as long as the log, then the result)
            keys = np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths)
            keys *= self.n_items + 1
            keys += self.flat
            keys.sort()
            first = np.ones(len(keys), dtype=bool)
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            self._touched = keys[first]
        return self._touched

    def save(self, folder: str | Path) -> None:
        """Write the store to ``folder``: one .npy file per array (ids too,
        unless they mix types: then in store.json), each written atomically,
        store.json last (its presence says the store is complete)."""
        folder = Path(folder)
        arrays = {"flat": self.flat, "offsets": self.offsets, "touched": self.touched_keys()}
        if self.planted_intents is not None:
            arrays["planted_intents"] = self.planted_intents
        meta: dict = {"name": self.name, "users": self.n_users, "items": self.n_items}
        for key in ("user_ids", "item_ids"):
            ids = getattr(self, key)
            one_type = isinstance(ids, np.ndarray) or len({type(x) for x in ids}) == 1
            array = np.asarray(ids) if one_type else None
            if array is not None and array.dtype.kind in "iuU":
                arrays[key] = array
            else:  # mixed types (or none): keep them as they are, in JSON
                meta[key] = id_list(ids)
        for key, array in arrays.items():
            atomic_write(folder / f"{key}.npy", partial(_save_npy, array=array))
        atomic_write_text(folder / "store.json", json.dumps(meta))

    @classmethod
    def open(cls, folder: str | Path, mmap: bool = True) -> Interactions:
        """A saved store, its arrays memory-mapped (read-only) unless ``mmap`` is
        False: memory then holds what training touches, not the whole log."""
        folder = Path(folder)
        meta = json.loads((folder / "store.json").read_text())
        mode = "r" if mmap else None

        def load(key):
            return meta[key] if key in meta else np.load(folder / f"{key}.npy", mmap_mode=mode)

        data = cls(load("user_ids"), load("item_ids"), load("flat"), load("offsets"), meta["name"])
        data._touched = load("touched")
        if (folder / "planted_intents.npy").exists():
            data.planted_intents = load("planted_intents")
        return data

    def to_log(self, path: str | Path) -> int:
        """Write the interactions as a CSV log in the original ids (columns
        user_id, item_id, timestamp: the position in the user's sequence),
        the format ``data.format = log`` reads.  Returns the row count."""
        lengths = self.lengths
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(np.asarray(self.user_ids, dtype=object), lengths),
                "item_id": np.asarray(self.item_ids, dtype=object)[self.flat - 1],
                "timestamp": np.arange(len(self.flat)) - np.repeat(self.offsets[:-1], lengths),
            }
        )
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
        return len(frame)

    def stats(self) -> dict:
        lengths = self.lengths
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": int(lengths.sum()),
            "avg_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "max_length": int(lengths.max()) if len(lengths) else 0,
        }


# --------------------------------------------------------------------------- #
# Readers
# --------------------------------------------------------------------------- #
def _parse_int(token: str, path: Path, lineno: int, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise DataError(f"{path}:{lineno}: {what} {token!r} is not an integer") from None


def read_sequences(path: str | Path) -> tuple[list[int], list[list[int]]]:
    """The benchmark format: one line per user, ``user_id item_1 item_2 ...``."""
    path = Path(path)
    users, seqs, seen = [], [], {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        user = _parse_int(tokens[0], path, lineno, "user id")
        if len(tokens) < 2:
            raise DataError(f"{path}:{lineno}: user {user} has no items")
        if user in seen:
            raise DataError(
                f"{path}:{lineno}: user {user} already listed on line {seen[user]} "
                "(one interaction per line? use --format pairs)"
            )
        seen[user] = lineno
        users.append(user)
        seqs.append([_parse_int(t, path, lineno, "item id") for t in tokens[1:]])
    if not users:
        raise DataError(f"{path}: empty file (expected lines of 'user_id item_1 item_2 ...')")
    return users, seqs


def read_pairs(path: str | Path) -> tuple[list[int], list[list[int]]]:
    """One interaction per line, ``user item``, chronological within each user."""
    path = Path(path)
    by_user: dict[int, list[int]] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2:
            raise DataError(f"{path}:{lineno}: expected 'user item', got {len(tokens)} fields")
        user = _parse_int(tokens[0], path, lineno, "user id")
        item = _parse_int(tokens[1], path, lineno, "item id")
        by_user.setdefault(user, []).append(item)
    if not by_user:
        raise DataError(f"{path}: empty file (expected lines of 'user item')")
    return list(by_user), list(by_user.values())


def read_log(
    path: str | Path,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    sep: str | None = None,
    chunk_rows: int = 1 << 20,
) -> Interactions:
    """CSV, TSV or Parquet with named columns, read in chunks of ``chunk_rows``
    with PyArrow: each chunk's user and item ids become integer codes against
    dictionaries that grow chunk by chunk, so memory holds integer columns,
    never a Python object per row or per user.  Sequences are sorted by time,
    ties kept in file order; ids are numbered in sorted order (numbers as
    numbers when every id of a text file is one).  ``sep``: the text
    separator (default: by suffix, else a comma)."""
    path = Path(path)
    chunks = _log_chunks(path, (user_col, item_col, time_col), sep, chunk_rows)
    users, items = _Codes(), _Codes()
    cols: tuple[list, list, list] = ([], [], [])
    times = _Times(path, time_col)
    row = 0
    for chunk in chunks:
        for col in (user_col, item_col, time_col):
            nulls = chunk.column(col).is_null()
            if pc.any(nulls).as_py():
                line = row + int(np.flatnonzero(nulls.to_numpy(zero_copy_only=False))[0]) + 2
                # +2: one for the header, one because file lines count from 1.
                raise DataError(f"{path}: column {col!r} is empty on line {line}")
        cols[0].append(users.encode(chunk.column(user_col)))
        cols[1].append(items.encode(chunk.column(item_col)))
        cols[2].append(times.parse(chunk.column(time_col), row))
        row += chunk.num_rows
    if row == 0:
        raise DataError(f"{path}: no rows")
    user_ids, user_rank = users.sorted_ids()
    item_ids, item_rank = items.sorted_ids()
    # (int32 codes and ranks, each list of chunks freed once joined: the
    # columns of a 20M-row log take 80 MB each)
    user = user_rank[_join(cols[0])]
    item = item_rank[_join(cols[1])]
    # A stable sort by (user, time) keeps ties in file order.
    order = np.lexsort((_join(cols[2]), user))
    item = item[order].astype(np.int64) + 1
    del order
    offsets = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=len(user_ids)), out=offsets[1:])
    return Interactions(user_ids, item_ids, item, offsets, name=path.stem)


def _join(chunks: list) -> np.ndarray:
    """The chunks as one array; the list emptied, so each chunk is freed."""
    joined = np.concatenate(chunks)
    chunks.clear()
    return joined


def _log_chunks(path: Path, columns: tuple[str, str, str], sep: str | None, chunk_rows: int):
    """The log's record batches, holding ``columns`` only; ids as text in a text file."""
    user_col, item_col, time_col = columns
    if path.suffix.lower() == ".parquet":
        try:
            source = pq.ParquetFile(path)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except pa.ArrowException as e:
            raise DataError(f"{path}: cannot read as Parquet: {e}") from None
        found = source.schema_arrow.names
        _require_columns(path, columns, found)
        return source.iter_batches(batch_size=chunk_rows, columns=list(columns))
    head = read_text(path, 1 << 16)  # not text: say where; a byte-order mark is fine
    if not head.strip():
        raise DataError(f"{path}: empty file (expected a header and rows)")
    sep = sep or LOG_SUFFIXES.get(path.suffix.lower()) or ","
    found = [c.strip('"') for c in head.splitlines()[0].split(sep)]
    _require_columns(path, columns, found)
    text = pa.string()
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=max(chunk_rows * 32, 1 << 16)),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns),
                column_types={user_col: text, item_col: text, time_col: text},
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowException as e:  # parser errors carry the row in their text
        raise DataError(f"{path}: cannot parse: {e}") from None
    return _reraise(path, reader)


def _reraise(path: Path, batches):
    try:
        yield from batches
    except pa.ArrowException as e:
        raise DataError(f"{path}: cannot parse: {e}") from None


def _require_columns(path: Path, columns, found) -> None:
    missing = [c for c in columns if c not in found]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(found)} "
            "(set --user-col/--item-col/--time-col)"
        )


class _Codes:
    """Integer codes for the values of an id column, chunk by chunk: a
    chunk's distinct values are looked up in the dictionary of every value
    seen so far (first-seen order), and the new ones appended."""

    def __init__(self):
        self.seen: pa.Array | None = None

    def encode(self, column: pa.Array) -> np.ndarray:
        encoded = pc.dictionary_encode(column)
        local, indices = encoded.dictionary, encoded.indices.to_numpy()
        if self.seen is None:
            self.seen = local
            return indices.astype(np.int32)
        if local.type != self.seen.type:
            local = local.cast(self.seen.type)
        where = pc.index_in(local, value_set=self.seen)
        new = pc.is_null(where)
        codes = where.fill_null(-1).to_numpy().astype(np.int32)
        is_new = new.to_numpy(zero_copy_only=False)
        codes[is_new] = len(self.seen) + np.arange(int(is_new.sum()))
        self.seen = pa.concat_arrays([self.seen, local.filter(new)])
        return codes[indices]

    def sorted_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct ids in sorted order, each code's position among them).
        Text ids that all read as integers become integers first (as a CSV
        reader would type the column), so 10 sorts after 9."""
        values = self.seen
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            try:
                values = pc.cast(pc.utf8_trim_whitespace(values), pa.int64())
            except pa.ArrowInvalid:
                pass
        array = values.to_numpy(zero_copy_only=False)
        if array.dtype == object:
            array = array.astype(str)  # fixed-width text: no Python object per id
        ids, rank = np.unique(array, return_inverse=True)
        return ids, rank.reshape(-1).astype(np.int32)


class _Times:
    """A time column as sortable int64/float64: numbers as they are, else
    dates and times (decided by the first chunk, held for the rest)."""

    def __init__(self, path: Path, name: str):
        self.path, self.name, self.numeric = path, name, None

    def parse(self, column: pa.Array, first_row: int) -> np.ndarray:
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            return column.to_numpy(zero_copy_only=False)
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            return column.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy()
        if self.numeric is not False:
            try:
                values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
                self.numeric = True
                return values
            except pa.ArrowInvalid:
                first = pd.to_numeric(pd.Series([column[0].as_py()]), errors="coerce")
                if self.numeric or not first.isna().all():  # numbers, until one is not
                    self._fail(column, first_row)
                self.numeric = False
        with warnings.catch_warnings():  # "could not infer format": each parsed on its own
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(
                pd.Series(column.to_numpy(zero_copy_only=False)), errors="coerce"
            )
        bad = parsed.isna().to_numpy().nonzero()[0]
        if len(bad):
            value = column[int(bad[0])].as_py()
            raise DataError(
                f"{self.path}: column {self.name!r} line {first_row + bad[0] + 2}: "
                f"{value!r} is not a time"
            )
        return parsed.to_numpy().astype("datetime64[ns]").astype(np.int64)

    def _fail(self, column: pa.Array, first_row: int) -> None:
        values = pd.to_numeric(pd.Series(column.to_numpy(zero_copy_only=False)), errors="coerce")
        bad = int(values.isna().to_numpy().nonzero()[0][0])
        raise DataError(
            f"{self.path}: column {self.name!r} line {first_row + bad + 2}: "
            f"{column[bad].as_py()!r} is not a number like the lines before it"
        )


def _save_npy(tmp: str, array: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _take(ids, index: np.ndarray):
    """ids[index] for a list (kept a list) or an array of ids."""
    return ids[index] if isinstance(ids, np.ndarray) else [ids[i] for i in index]


def id_list(ids) -> list:
    """Ids as a list of plain Python values (for JSON), from a list or an array."""
    return ids.tolist() if isinstance(ids, np.ndarray) else list(ids)


def _plain(value):
    """numpy scalars to Python ones, so ids serialise to JSON as the user wrote them."""
    return value.item() if hasattr(value, "item") else value


def read_text(path: Path, limit: int | None = None) -> str:
    """The file (or its first ``limit`` bytes) as UTF-8 text, a byte-order mark
    at its start dropped; a file that is not text is named with the offset of
    its first byte that is not."""
    try:
        with open(path, "rb") as f:
            raw = f.read() if limit is None else f.read(limit)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path}: not a text file (a NUL byte at byte offset {nul})")
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        if limit is not None and e.start >= len(raw) - bom - 4:
            return raw[bom : bom + e.start].decode("utf-8")  # a character cut by the limit
        offset = bom + e.start
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[offset]:02x} at byte offset {offset})"
        ) from None


LOG_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".parquet": None}
FORMATS = ("sequences", "pairs", "log")


def detect_format(path: str | Path, sample_bytes: int = 1 << 20) -> tuple[str, str | None]:
    """The format of a file, from its suffix or a sample of its lines: (format,
    separator of a log).  CSV/TSV/Parquet by suffix, or a first line with a
    comma or tab among names (a header); lines of exactly two integers in
    which user ids repeat are ``pairs``; one line per user with unique users
    is ``sequences``.  When the sample cannot tell, the error names the
    formats considered and how to choose one."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in LOG_SUFFIXES:
        return "log", LOG_SUFFIXES[suffix]
    lines = [x for x in read_text(path, sample_bytes).splitlines()[:5000] if x.strip()]
    if not lines:
        raise DataError(f"{path}: empty file")
    choose = (
        "; choose one with --format sequences|pairs|log (log: CSV/TSV/Parquet with "
        "named columns, --user-col/--item-col/--time-col)"
    )
    for sep in (",", "\t"):
        fields = lines[0].split(sep)
        if len(fields) > 1 and not all(_is_int(x.strip()) for x in fields):
            return "log", sep  # a header line
    rows = [x.split() for x in lines]
    if not all(_is_int(t) for t in rows[0]):  # (a bad id further down: the reader names its line)
        raise DataError(
            f"{path}: cannot tell its format: considered sequences and pairs (whitespace-"
            f"separated integer ids) and a CSV/TSV log (a header line){choose}"
        )
    users = [row[0] for row in rows]
    repeats = len(set(users)) < len(users)
    widths = {len(row) for row in rows}
    if widths == {2} and repeats:
        return "pairs", None
    if not repeats and min(widths) >= 2:
        return "sequences", None  # (all two columns and unique: both read the same)
    raise DataError(
        f"{path}: cannot tell its format: user ids repeat (pairs?) but lines hold "
        f"{sorted(widths)} fields (sequences?){choose}"
    )


def _is_int(token: str) -> bool:
    try:
        int(token)
        return True
    except ValueError:
        return False


def kcore_filter(data: Interactions, k: int) -> Interactions:
    """Drop users and items with fewer than k interactions, repeated to a
    fixed point; on the columns, one pass a round."""
    if k <= 1:
        return data
    flat, users = data.flat, np.repeat(np.arange(data.n_users), data.lengths)
    keep = np.ones(len(flat), dtype=bool)
    while True:
        item_count = np.bincount(flat[keep], minlength=data.n_items + 1)
        kept = keep & (item_count[flat] >= k)
        kept &= (np.bincount(users[kept], minlength=data.n_users) >= k)[users]
        if kept.sum() == keep.sum():  # kept is a subset of keep: nothing changed
            return data.subset(keep)
        keep = kept


# --------------------------------------------------------------------------- #
# Benchmarks
# --------------------------------------------------------------------------- #
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def benchmark_path(
    name: str, data_dir: str | None = None, url: str = BENCHMARK_URL, timeout: float = 30.0
) -> Path:
    """Locate (or fetch) a benchmark file by name and verify its sha256."""
    key = name.lower()
    if key not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    stem = BENCHMARKS[key]
    folder = data_dir or os.environ.get("ELCREC_DATA_DIR")
    if not folder:
        folder = str(Path.home() / ".cache" / "elcrec")
    path = Path(folder) / f"{stem}.txt"
    expected = BENCHMARK_SHA256[stem]
    if not path.exists():
        _download(url.format(name=stem), path, expected, timeout)
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 {actual} does not match the published {expected}; "
            "the file is not the benchmark file (replace it with the ICLRec copy)"
        )
    return path


def _download(url: str, path: Path, expected: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise DataError(
            f"{path.name} not found in {path.parent} and could not be downloaded from {url} ({e}). "
            f"Put {path.name} (sha256 {expected}) in that folder, or point --data-dir or "
            "ELCREC_DATA_DIR at the folder that holds it."
        ) from None
    if hashlib.sha256(payload).hexdigest() != expected:
        raise DataError(f"download from {url}: sha256 does not match {expected}; not saved")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


# --------------------------------------------------------------------------- #
# Built-in synthetic data with planted intents
# --------------------------------------------------------------------------- #
def synthetic(
    n_users: int = 6000, n_items: int = 3000, n_intents: int = 16, seed: int = 0
) -> Interactions:
    """Users follow one or two latent intents; each intent is a chain over its own items.

    Every intent owns n_items / n_intents items in a random order.  A user has a
    primary intent (the planted label) and, for 30% of users, a secondary one
    used at 20% of steps.  The next item is the following item of the current
    intent's chain (60%), another item of that intent (25%), or a popular item
    of any intent (15%).  Deterministic for a given seed.
    """
    if n_items < n_intents * 4:
        raise ValueError("synthetic data needs at least 4 items per intent")
    rng = np.random.default_rng(seed)
    owner = rng.permutation(n_items) % n_intents  # intent of each item (0-based item index)
    chains = [rng.permutation(np.flatnonzero(owner == z)) for z in range(n_intents)]
    position = np.empty(n_items, dtype=np.int64)
    for chain in chains:
        position[chain] = np.arange(len(chain))
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popular = rng.permutation(n_items)
    popularity = popularity / popularity.sum()

    primary = rng.integers(0, n_intents, n_users)
    secondary = np.where(rng.random(n_users) < 0.3, rng.integers(0, n_intents, n_users), primary)
    lengths = np.minimum(5 + rng.poisson(8, n_users), 60)
    seqs = []
    for u in range(n_users):
        chain = chains[primary[u]]
        item = chain[rng.integers(len(chain))]
        seq = [item]
        for _ in range(lengths[u] - 1):
            z = secondary[u] if rng.random() < 0.2 else primary[u]
            chain = chains[z]
            r = rng.random()
            if r < 0.6 and owner[item] == z:
                item = chain[(position[item] + 1) % len(chain)]
            elif r < 0.85:
                item = chain[rng.integers(len(chain))]
            else:
                item = popular[rng.choice(n_items, p=popularity)]
            seq.append(item)
        seqs.append([int(i) + 1 for i in seq])
    data = Interactions.from_sequences(list(range(n_users)), seqs, name="synthetic")
    data.planted_intents = primary
    return data


def write_synthetic_log(
    path: str | Path,
    n_users: int = 1_000_000,
    n_items: int = 100_000,
    n_intents: int = 1000,
    mean_length: float = 20.0,
    seed: int = 0,
    chunk_users: int = 100_000,
) -> dict:
    """A synthetic interaction log at scale, written to Parquet (user_id,
    item_id, timestamp, intent) chunk by chunk, so memory holds one chunk.

    Items have power-law popularity (Zipf exponent 1) and belong to one of
    ``n_intents`` intents; every user has one (the planted ``intent``
    column).  A step continues the current item's intent chain (50 %), picks
    an item of the user's intent by popularity (30 %), or a popular item of
    any intent (20 %).  Lengths are 5 + Poisson(mean_length - 5).  Rows come
    out shuffled within each chunk of users, as in a log ordered by something
    other than user.  Returns the counts."""
    rng = np.random.default_rng(seed)
    owner = rng.permutation(n_items) % n_intents  # each item's intent (0-based items)
    by_intent = np.argsort(owner, kind="stable")  # items grouped by intent
    first = np.searchsorted(owner[by_intent], np.arange(n_intents + 1))
    size = np.diff(first)
    position = np.empty(n_items, dtype=np.int64)
    position[by_intent] = np.arange(n_items) - first[owner[by_intent]]
    popularity = 1.0 / np.arange(1, n_items + 1)
    cdf = np.cumsum(popularity / popularity.sum())
    popular = rng.permutation(n_items)  # popularity rank -> item
    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("timestamp", pa.int64()),
            ("intent", pa.int32()),
        ]
    )
    total = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, n_users, chunk_users):
            users = np.arange(lo, min(lo + chunk_users, n_users))
            intent = rng.integers(0, n_intents, len(users))
            lengths = 5 + rng.poisson(max(mean_length - 5, 0), len(users))
            steps = np.zeros((len(users), int(lengths.max())), dtype=np.int64)
            item = by_intent[first[intent] + rng.integers(0, size[intent])]
            for t in range(steps.shape[1]):
                steps[:, t] = item
                r = rng.random(len(users))
                chain = owner[item]
                following = by_intent[first[chain] + (position[item] + 1) % size[chain]]
                # an item of the user's intent, popular ones more often (rank ~ Zipf)
                rank = np.minimum((rng.pareto(1.0, len(users))).astype(np.int64), size[intent] - 1)
                own = by_intent[first[intent] + rank]
                anywhere = popular[np.searchsorted(cdf, rng.random(len(users)))]
                item = np.where(r < 0.5, following, np.where(r < 0.8, own, anywhere))
            mask = np.arange(steps.shape[1])[None, :] < lengths[:, None]
            rows = np.flatnonzero(mask.reshape(-1))
            rows = rows[rng.permutation(len(rows))]
            u = users[rows // steps.shape[1]]
            t = rows % steps.shape[1]
            table = pa.table(
                {
                    "user_id": u,
                    "item_id": steps.reshape(-1)[rows] + 1,
                    "timestamp": 1_600_000_000 + t * 3600 + (u % 3600),
                    "intent": intent[rows // steps.shape[1]].astype(np.int32),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=1 << 20)
            total += len(rows)
    os.replace(tmp, path)
    return {"users": n_users, "items": n_items, "intents": n_intents, "interactions": total}


def load(cfg: DataConfig) -> Interactions:
    """Resolve ``cfg.source`` to Interactions (benchmark name, "synthetic" or a file)."""
    source = cfg.source
    if source == "synthetic":
        return synthetic(
            cfg.synthetic_users, cfg.synthetic_items, cfg.synthetic_intents, cfg.synthetic_seed
        )
    if source.lower() in BENCHMARKS:
        path = benchmark_path(source, cfg.data_dir)
        data = Interactions.from_sequences(*read_sequences(path), name=BENCHMARKS[source.lower()])
    else:
        path = Path(source)
        fmt, sep = cfg.format, None
        if fmt == "auto":
            fmt, sep = detect_format(path)
        if fmt == "log":
            data = read_log(path, cfg.user_col, cfg.item_col, cfg.time_col, sep)
        else:
            reader = read_sequences if fmt == "sequences" else read_pairs
            data = Interactions.from_sequences(*reader(path), name=path.stem)
    data = kcore_filter(data, cfg.kcore)
    short = data.lengths < MIN_SPLIT_LEN
    if short.any():
        first = int(np.argmax(short))
        if not cfg.drop_short_users:
            raise DataError(
                f"{source}: user {_plain(data.user_ids[first])!r} has {data.lengths[first]} "
                f"item(s); the leave-one-out split needs at least {MIN_SPLIT_LEN} "
                f"({int(short.sum())} such users). Use --drop-short-users or --kcore to drop them."
            )
        data = data.subset(np.repeat(~short, data.lengths))
    if not data.n_users:
        raise DataError(f"{source}: no user is left after filtering")
    return data


# --------------------------------------------------------------------------- #
# Leave-one-out split and batches
# --------------------------------------------------------------------------- #
def right_aligned(
    flat: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_len: int, width: int | None = None
) -> np.ndarray:
    """Rows flat[starts[i]:ends[i]], keeping the last max_len items, left-padded with 0.

    The matrix is as wide as its longest row (or ``width``), not always max_len:
    padding positions are masked out of attention, so the outputs at real
    positions are the same however much padding there is.
    """
    lengths = np.minimum(ends - starts, max_len)
    lengths = np.maximum(lengths, 0)
    width = int(lengths.max(initial=0)) if width is None else width
    out = np.zeros((len(starts), max(width, 1)), dtype=np.int64)
    rows = np.repeat(np.arange(len(starts)), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = out.shape[1] - np.repeat(lengths, lengths) + within
    out[rows, cols] = flat[np.repeat(ends - lengths, lengths) + within]
    return out


def pad_left(matrix: np.ndarray, width: int) -> np.ndarray:
    """Widen a right-aligned matrix to ``width`` columns with leading padding."""
    if matrix.shape[1] >= width:
        return matrix
    out = np.zeros((matrix.shape[0], width), dtype=matrix.dtype)
    out[:, width - matrix.shape[1] :] = matrix
    return out


class TrainSamples(NamedTuple):
    """Training samples, one per row: sample i belongs to users[i], its input
    is flat[starts[i]:ends[i]] (the last max_len items of it) and its next
    item flat[ends[i]]."""

    users: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def take(self, rows) -> TrainSamples:
        return TrainSamples(self.users[rows], self.starts[rows], self.ends[rows])


@dataclass
class Split:
    """Leave-one-out (docs/method.md, "Data and evaluation"): per user, the last item is the test
    target, the second-to-last the validation target, the rest is training.

    Training input of user u is seq[:-3] with targets seq[1:-2]; validation
    input is seq[:-2]; test input is seq[:-1] (it includes the validation item).
    """

    data: Interactions
    max_len: int

    def __post_init__(self) -> None:
        lengths = self.data.lengths
        if (lengths < MIN_SPLIT_LEN).any():
            u = int(np.argmax(lengths < MIN_SPLIT_LEN))
            raise DataError(f"user {self.data.user_ids[u]!r} has fewer than {MIN_SPLIT_LEN} items")
        self.starts = self.data.offsets[:-1]
        self.ends = self.data.offsets[1:]
        # Users with at least one training position (sequence length >= 4).
        self.train_users = np.flatnonzero(lengths >= MIN_SPLIT_LEN + 1)
        self._touched = self.data.touched_keys()

    # Inputs and targets ---------------------------------------------------- #
    def inputs(self, users: np.ndarray, stage: str, width: int | None = None) -> np.ndarray:
        """Right-aligned input matrix for 'train', 'valid' or 'test'."""
        cut = {"train": 3, "valid": 2, "test": 1}[stage]
        return right_aligned(
            self.data.flat, self.starts[users], self.ends[users] - cut, self.max_len, width
        )

    def train_inputs(self, samples: TrainSamples, width: int | None = None) -> np.ndarray:
        """Right-aligned inputs of training samples (see train_samples)."""
        return right_aligned(self.data.flat, samples.starts, samples.ends, self.max_len, width)

    def targets(self, users: np.ndarray, stage: str) -> np.ndarray:
        if stage == "train":
            raise ValueError("training targets are per sample: use train_targets()")
        return self.data.flat[self.ends[users] - (2 if stage == "valid" else 1)]

    def train_targets(
        self, samples: TrainSamples, width: int, last_only: bool = False
    ) -> np.ndarray:
        """Right-aligned next items of training samples (see train_samples),
        aligned with train_inputs(): at each input position the item after it,
        so the last column holds the sample's target flat[end]; ``last_only``
        keeps that last column alone (a per-prefix sample's loss)."""
        if last_only:
            out = np.zeros((len(samples.users), width), dtype=np.int64)
            out[:, -1] = self.data.flat[samples.ends]
            return out
        flat = self.data.flat
        return right_aligned(flat, samples.starts + 1, samples.ends + 1, self.max_len, width)

    def history(self, users: np.ndarray, stage: str) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) pairs of the items to exclude when ranking for this stage:
        everything before the target (validation: seq[:-2], test: seq[:-1])."""
        cut = 2 if stage == "valid" else 1
        starts, ends = self.starts[users], self.ends[users] - cut
        lengths = ends - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.data.flat[np.repeat(starts, lengths) + within]

    def train_target_counts(self) -> np.ndarray:
        """How often each item id (0..N) is a training target (seq[1:-2] of every user)."""
        # every item, less each user's first, validation and test items
        # (per-user arrays only: no array as long as the log)
        flat, n = self.data.flat, self.data.n_items + 1
        counts = np.bincount(flat, minlength=n)
        for ends in (self.starts, self.ends - 2, self.ends - 1):
            counts -= np.bincount(flat[ends], minlength=n)
        return counts

    def sample_negatives(self, users: np.ndarray, targets: np.ndarray, rng) -> np.ndarray:
        """One item per target position that the user never touched (0 where target is 0)."""
        n = self.data.n_items
        neg = rng.integers(1, n + 1, size=targets.shape)
        key_base = (users * (n + 1))[:, None]
        todo = targets > 0
        for _ in range(100):
            keys = key_base + neg
            pos = np.searchsorted(self._touched, keys)
            pos = np.minimum(pos, len(self._touched) - 1)
            bad = todo & (self._touched[pos] == keys)
            if not bad.any():
                break
            neg[bad] = rng.integers(1, n + 1, size=int(bad.sum()))
        return np.where(targets > 0, neg, 0)

    # Batches ------------------------------------------------------------------ #
    def whole_samples(self, users: np.ndarray) -> TrainSamples:
        """One sample per user: the whole training input seq[:-3], a target
        at every position (seq[1:-2])."""
        return TrainSamples(users, self.starts[users], self.ends[users] - 3)

    def train_samples(self, kind: str = "users") -> TrainSamples:
        """Every training sample: its input is the user's items flat[start:end]
        (the last max_len of them), its target flat[end].

        * ``users``: one sample per user, its whole training input seq[:-3],
          with a target at every position (SASRec's and the authors' way);
        * ``prefixes``: one sample per training target seq[i] (i = 1 .. len-3),
          its input the items before it, the loss at the last position only
          (RecBole's way: every target gets its own window, batch slot and
          dropout draw, and targets beyond the last max_len items still train);
        * ``window``: the pipeline of FMLP-Rec and BSARec's released code: the
          targets are the user's last max_len training items, each predicted
          from the items before it inside that window (every input starts at
          the window's first item, which is predicted from an empty input).
        """
        if kind == "users":
            return self.whole_samples(self.train_users)
        if kind == "prefixes":
            users = self.train_users
            floor, first = self.starts[users], self.starts[users] + 1
        elif kind == "window":
            users = np.arange(self.data.n_users)
            floor = first = np.maximum(self.starts, self.ends - 2 - self.max_len)
        else:
            raise ValueError(f"unknown sample kind {kind!r}")
        counts = self.ends[users] - 2 - first
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return TrainSamples(
            np.repeat(users, counts), np.repeat(floor, counts), np.repeat(first, counts) + within
        )

    @cached_property
    def _target_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every training target's flat position, grouped by item: (positions
        sorted by item, first index of each item's group, group sizes, each
        position's rank inside its group or -1 if it is not a training target)."""
        flat = self.data.flat
        targets = self.train_samples("prefixes").ends  # every training target once
        by_item = targets[np.argsort(flat[targets], kind="stable")]
        items = flat[by_item]
        bounds = np.arange(self.data.n_items + 2)
        first = np.searchsorted(items, bounds[:-1])
        size = np.searchsorted(items, bounds[1:]) - first
        rank = np.full(len(flat), -1, dtype=np.int64)
        rank[by_item] = np.arange(len(by_item)) - first[items]
        return by_item, first, size, rank

    def same_target_partners(self, ends: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        """(users, ends) of one other training sample per sample with the same
        next item flat[end], drawn uniformly among them; the sample itself when
        no other training target is that item.  Only training targets are
        drawn, so no validation or test item leaks in."""
        by_item, first, size, rank = self._target_groups
        items = self.data.flat[ends]
        own, n = rank[ends], size[items]
        if (own < 0).any():
            raise ValueError("same_target_partners: an end is not a training target")
        k = (rng.random(len(ends)) * np.maximum(n - 1, 1)).astype(np.int64)
        k = np.where(n > 1, k + (k >= own), own)  # skip the sample itself
        partner = by_item[first[items] + k]
        users = np.searchsorted(self.ends, partner, side="right")
        return users, partner

    def same_target_inputs(self, ends: np.ndarray, rng, width: int) -> np.ndarray:
        """The second view of model.views = same_target (the first is the
        sample's own input): each sample's partner (same_target_partners), cut
        to its last ``width`` items, the width of the own inputs: a bucketed
        batch of short prefixes would otherwise be widened to max_len by a few
        long partners, and the encoder's cost grows with the width (4x per
        epoch on Beauty)."""
        p_users, p_ends = self.same_target_partners(ends, rng)
        return right_aligned(self.data.flat, self.starts[p_users], p_ends, width, width)

    def train_batches(
        self, batch_size: int, seed: int, epoch: int, bucket_batches: int, samples: str = "users"
    ) -> list[TrainSamples]:
        """This epoch's batches of training samples (train_samples of kind
        ``samples``); deterministic in (seed, epoch).

        With bucket_batches > 0 samples are shuffled, then sorted by length
        inside pools of bucket_batches batches, so each batch holds similar
        lengths; the batch order is shuffled again.
        """
        rng = np.random.default_rng([seed, epoch, 7])
        every = self.train_samples(samples)
        order = rng.permutation(len(every.users))
        if bucket_batches > 0:
            lengths = np.minimum(every.ends - every.starts, self.max_len)[order]
            pool = batch_size * bucket_batches
            for lo in range(0, len(order), pool):
                chunk = order[lo : lo + pool]
                order[lo : lo + pool] = chunk[np.argsort(lengths[lo : lo + pool], kind="stable")]
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if bucket_batches > 0:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return [every.take(b) for b in batches]

    def eval_batches(
        self, batch_size: int, stage: str, users: np.ndarray | None = None
    ) -> Iterator[np.ndarray]:
        """All users (or ``users``), in batches of similar input length (order
        does not change metrics)."""
        cut = 2 if stage == "valid" else 1
        users = np.arange(self.data.n_users) if users is None else np.asarray(users)
        lengths = np.minimum(self.ends[users] - self.starts[users] - cut, self.max_len)
        order = users[np.argsort(lengths, kind="stable")]
        for i in range(0, len(order), batch_size):
            yield order[i : i + batch_size]

    def train_views(
        self, samples: TrainSamples, rng, ratios: tuple[float, float, float]
    ) -> np.ndarray:
        """One augmented view of each training sample's input (crop, mask or
        reorder, chosen uniformly), right-aligned and cut to the last max_len."""
        return augment(self.data.flat, samples.starts, samples.ends, rng, ratios, self.max_len)


def augment(
    flat: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    rng,
    ratios: tuple[float, float, float] = (0.2, 0.7, 0.2),
    max_len: int = 50,
) -> np.ndarray:
    """Vectorised crop / mask / reorder, one operator per row drawn uniformly.

    Follows the authors' operators exactly (CoSeRec/ICLRec ``data_augmentation``):
    * crop: keep floor(tao*n) items (at least 1) from start ~ U{0..n-floor(tao*n)-1};
    * mask: set floor(gamma*n) distinct positions to the padding id 0;
    * reorder: shuffle the floor(beta*n) items from start ~ U{0..n-floor(beta*n)-1}.
    """
    tao, gamma, beta = ratios
    n = np.maximum(ends - starts, 0)
    b = len(n)
    width = int(n.max(initial=0))
    width = max(width, 1)
    cols = np.arange(width)[None, :]
    valid = cols < n[:, None]
    seq = np.zeros((b, width), dtype=np.int64)  # left-aligned full sequences
    idx = np.where(valid, starts[:, None] + cols, 0)
    seq[valid] = flat[idx[valid]]

    op = rng.integers(0, 3, size=b)
    u = rng.random(b)
    keys = rng.random((b, width))
    out_start = np.zeros(b, dtype=np.int64)
    out_len = n.copy()

    # crop
    sub = np.floor(tao * n).astype(np.int64)
    crop_start = np.floor(u * np.maximum(n - sub, 1)).astype(np.int64)
    is_crop = (op == 0) & (n > 0)
    out_start[is_crop] = crop_start[is_crop]
    out_len[is_crop] = np.maximum(sub[is_crop], 1)

    # mask: the floor(gamma*n) positions with the smallest random keys
    m = np.floor(gamma * n).astype(np.int64)
    mask_keys = np.where(valid, keys, np.inf)
    rank = np.argsort(np.argsort(mask_keys, axis=1, kind="stable"), axis=1, kind="stable")
    is_mask = (op == 1)[:, None] & (rank < m[:, None])
    seq = np.where(is_mask, 0, seq)

    # reorder: sort the window by random keys, everything else by position
    sub_r = np.floor(beta * n).astype(np.int64)
    r_start = np.floor(u * np.maximum(n - sub_r, 1)).astype(np.int64)
    in_window = (cols >= r_start[:, None]) & (cols < (r_start + sub_r)[:, None])
    in_window &= (op == 2)[:, None]
    sort_key = np.where(in_window, r_start[:, None] - 0.5 + keys * sub_r[:, None], cols)
    perm = np.argsort(sort_key, axis=1, kind="stable")
    seq = np.take_along_axis(seq, perm, axis=1)

    # Right-align the [out_start, out_start + out_len) slice, keeping the last max_len.
    flat_rows = seq.reshape(-1)
    row_base = np.arange(b) * width
    return right_aligned(flat_rows, row_base + out_start, row_base + out_start + out_len, max_len)


__all__ = [
    "DataError",
    "Interactions",
    "Split",
    "augment",
    "benchmark_path",
    "kcore_filter",
    "load",
    "pad_left",
    "read_log",
    "read_pairs",
    "read_sequences",
    "right_aligned",
    "synthetic",
    "write_synthetic_log",
]
