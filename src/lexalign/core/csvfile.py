"""Checks on a CSV file before it is trusted: a regular UTF-8 text file (not a device, pipe, archive or
UTF-16), a header without duplicates, and every line with as many fields as the header.

polars, reading only the columns it needs, would realign a ragged row in silence (a date became a
cue); :func:`check_field_counts` is the vectorised, quote-aware pass that prevents it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lexalign.core.errors import LexalignError

_CHUNK = 1 << 20  # bytes per step of the field-count check
_QUOTE, _NEWLINE, _RETURN = ord('"'), ord("\n"), ord("\r")
_ALL_BITS = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def check_regular_file(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    except OSError as exc:
        raise LexalignError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise LexalignError(f"{path}: is a directory, expected a CSV file")
    if not stat.S_ISREG(mode):
        raise LexalignError(
            f"{path}: not a regular file (a device, pipe or socket); "
            "save the norms to a file and point norms.path at it"
        )


def sniff(path: Path) -> tuple[str, list[str]]:
    """Check encoding and shape from the file's head; return (separator, header names)."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if not head.strip():
        raise LexalignError(f"{path}: file is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x1f\x8b"):
        raise LexalignError(f"{path}: file is compressed (zip/gzip); extract the CSV first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:200].count(b"\x00") > 1:
        raise LexalignError(f"{path}: file is UTF-16 encoded (or binary); re-save it as UTF-8")
    if b"\x00" in head:
        raise _nul_error(path, head[: head.index(b"\x00")].count(b"\n") + 1)
    if b"\r" in head and b"\n" not in head:
        raise LexalignError(
            f"{path}: lines end in a bare carriage return (old Mac style); re-save it with LF line ends"
        )
    head = head.removeprefix(b"\xef\xbb\xbf")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 64 KiB boundary
            line = head[: exc.start].count(b"\n") + 1
            raise LexalignError(f"{path}: not UTF-8 (invalid byte at line {line}); re-save the file as UTF-8") from None
        text = head[: exc.start].decode("utf-8")
    header_line = text.splitlines()[0]
    separator = max(("\t", ",", ";"), key=header_line.count)
    if header_line.count(separator) == 0:
        raise LexalignError(f"{path}: header has a single column; expected a comma- or tab-separated table")
    header = next(csv.reader(io.StringIO(header_line), delimiter=separator))
    lowered = [name.strip().lower() for name in header]
    duplicates = sorted({name for name in lowered if name and lowered.count(name) > 1})
    if duplicates:
        raise LexalignError(f"{path}: duplicate column(s) in header: {', '.join(duplicates)}")
    return separator, header


def _bit_words(mask: np.ndarray) -> np.ndarray:
    """A boolean array as little-endian 64-bit words: bit i of word j is mask[64 * j + i]."""
    packed = np.packbits(mask, bitorder="little")
    packed = np.concatenate((packed, np.zeros(-len(packed) % 8, np.uint8)))
    return packed.view("<u8")


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(words).astype(np.int64)
    return _BYTE_POPCOUNT[words.view(np.uint8)].reshape(-1, 8).sum(axis=1, dtype=np.int64)


def _bit_at(words: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return (words[positions >> 6] >> (positions & 63).astype(np.uint64)) & np.uint64(1)


def check_field_counts(path: str | os.PathLike, separator: str, n_fields: int) -> int:
    """Check that every line of a CSV file has ``n_fields`` fields; return the number of data rows.

    Quote-aware (a separator or line break inside double quotes belongs to the value; ``""`` is an
    escaped quote), in bounded memory (1 MiB at a time) and vectorised: quote parity comes from a
    prefix XOR over 64-bit words of the quote bitmap, separators are counted per line with popcounts.
    Blank lines are skipped. Raises LexalignError naming the first bad line.
    """
    path = Path(path)
    expected = n_fields - 1
    sep = ord(separator)
    inside = 0  # 1 when a chunk starts inside a quoted value
    open_seps = open_len = 0  # separators and bytes of the record still open at a chunk's end
    open_line = 1  # physical line on which that record starts
    lines_before = 0  # line breaks in earlier chunks
    last_byte = _NEWLINE
    records = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            buf = np.frombuffer(chunk, np.uint8)
            nul_line = _nul_line(chunk, lines_before)  # anywhere in the file, not only in the head sniff reads
            if nul_line is not None:
                raise _nul_error(path, nul_line)
            quotes = _bit_words(buf == _QUOTE)
            parity = _popcount(quotes) & 1
            quoted = quotes.copy()  # bit set = inside quotes (a closing quote itself counts as outside)
            for shift in (1, 2, 4, 8, 16, 32):
                quoted ^= quoted << np.uint64(shift)
            carry = (np.cumsum(parity) - parity + inside) & 1
            quoted ^= carry.astype(np.uint64) * _ALL_BITS
            seps = _bit_words(buf == sep) & ~quoted
            breaks = np.flatnonzero(buf == _NEWLINE)
            ends = breaks[_bit_at(quoted, breaks) == 0]
            seps_per_word = _popcount(seps)
            before = np.cumsum(seps_per_word) - seps_per_word
            before = before[ends >> 6] + _popcount(
                seps[ends >> 6] & ((np.uint64(1) << (ends & 63).astype(np.uint64)) - np.uint64(1))
            )
            counts = np.diff(before, prepend=0)
            lengths = np.diff(ends, prepend=-1) - 1
            if len(ends):
                counts[0] += open_seps
                lengths[0] += open_len
                previous = np.where(ends > 0, buf[np.maximum(ends - 1, 0)], last_byte)
                blank = (lengths == 0) | ((lengths == 1) & (previous == _RETURN))
                bad = np.flatnonzero(~blank & (counts != expected))
                if len(bad):
                    k = int(bad[0])
                    line = (
                        open_line if k == 0 else lines_before + int(np.searchsorted(breaks, ends[k - 1], "right")) + 1
                    )
                    raise _field_count_error(path, line, int(counts[k]) + 1, n_fields, separator)
                records += int(np.count_nonzero(~blank))
                open_seps = int(seps_per_word.sum()) - int(before[-1])
                open_len = len(buf) - int(ends[-1]) - 1
                open_line = lines_before + int(np.searchsorted(breaks, ends[-1], "right")) + 1
            else:
                open_seps += int(seps_per_word.sum())
                open_len += len(buf)
            inside = (inside + int(parity.sum())) & 1
            lines_before += len(breaks)
            last_byte = int(buf[-1])
    if inside:
        raise LexalignError(
            f"{path}: file ends inside a quoted value (truncated download?); "
            f"line {open_line} opens a quote that never closes"
        )
    if open_len and not (open_len == 1 and last_byte == _RETURN):
        if open_seps != expected:
            raise LexalignError(
                f"{path}: file ends in the middle of a row (truncated download?): "
                f"line {open_line} has {open_seps + 1} of {n_fields} fields"
            )
        records += 1
    if records == 0:
        raise LexalignError(f"{path}: file is empty")
    return records - 1


def _nul_error(path: Path, line: int) -> LexalignError:
    return LexalignError(f"{path}: line {line} contains a NUL byte: not a text file (a damaged or binary file?)")


def _nul_line(chunk: bytes, lines_before: int) -> int | None:
    """The line of the chunk's first NUL byte (None: it has none); ``lines_before``: line breaks before it."""
    position = chunk.find(b"\x00")
    return None if position < 0 else lines_before + chunk.count(b"\n", 0, position) + 1


def check_no_nul(path: str | os.PathLike) -> None:
    """Refuse a file with a NUL byte anywhere, naming its line (for readers that go on past a bad row)."""
    lines_before = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            line = _nul_line(chunk, lines_before)
            if line is not None:
                raise _nul_error(Path(path), line)
            lines_before += chunk.count(b"\n")


class FieldCountError(LexalignError):
    """A line whose field count is not the header's (a reader may skip such rows instead of stopping)."""


def _field_count_error(path: Path, line: int, found: int, n_fields: int, separator: str) -> FieldCountError:
    sep = {"\t": "tab", ",": "comma", ";": "semicolon"}.get(separator, repr(separator))
    return FieldCountError(
        f"{path}: line {line} has {found} fields but the header has {n_fields} "
        f"(an unquoted {sep} or a stray quote in a value?); quote the value or fix the line"
    )


def first_line_not_utf8(path: Path) -> int | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return number
    return None


@contextlib.contextmanager
def any_field_size() -> Iterator[None]:
    """Let the csv module read a field of any length (its default limit, 128 KiB, would raise on the very
    rows an error message is looking for)."""
    previous = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def line_of_row(path: Path, separator: str, row: int) -> int:
    """Physical line on which data row ``row`` (0-based, as polars counts rows) starts."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle, any_field_size():
        reader = csv.reader(handle, delimiter=separator)
        next(reader, None)
        start = reader.line_num + 1
        for index, _ in enumerate(reader):
            if index == row:
                return start
            start = reader.line_num + 1
    return start
