"""Opening input files: gzip by magic bytes or suffix, UTF-8 with a clear error for other encodings."""

from __future__ import annotations

import codecs
import gzip
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TextIO

from store.importers.common import BadInputError


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


@contextmanager
def open_text(path: Path, gzip_mode: Literal["auto", "yes", "no"] = "auto") -> Iterator[TextIO]:
    """A text stream over the file that raises BadInputError (with the line) on bytes that are not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(path, "no such file")
    if path.is_dir():
        raise BadInputError(path, "is a folder, not a file")
    if path.stat().st_size == 0:
        raise BadInputError(path, "the file is empty")
    use_gzip = gzip_mode == "yes" or (gzip_mode == "auto" and is_gzip(path))
    with gzip.open(path, "rb") if use_gzip else open(path, "rb") as raw:
        yield _CheckedText(raw, path)


class _CheckedText(io.TextIOBase):
    """Decodes UTF-8 (with or without BOM) line by line so a decoding error can name its line."""

    def __init__(self, raw, path: Path):
        self._raw = raw
        self._path = path
        self._line = 0
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()

    def readline(self, size: int = -1) -> str:
        data = self._raw.readline()
        if not data:
            return ""
        self._line += 1
        try:
            return self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise BadInputError(
                self._path,
                f"wrong encoding: byte {data[exc.start]:#04x} is not UTF-8 (save the file as UTF-8)",
                self._line,
            ) from None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True


def jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line of a JSONL file; a line that is not a JSON object is an error
    naming the file and line.
    """
    with open_text(path) as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BadInputError(path, f"not valid JSON: {exc.msg}", line) from None
            if not isinstance(record, dict):
                raise BadInputError(path, "each line must be a JSON object", line)
            yield line, record
