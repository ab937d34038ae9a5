"""What every importer shares: the bad-input error, stable ids, and fast bulk writes for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Numeric, delete, insert, select
from sqlalchemy.orm import Session

from shopdesk.output import UserError
from store.models import Base

CHUNK = 20_000


class BadInputError(UserError):
    """A file the importer cannot take; the message names file, line and field."""

    def __init__(self, path: Path | str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = str(path) + (f", line {line}" if line is not None else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


def parse_mapping(spec: str, fields: Sequence[str]) -> dict[str, str]:
    """Parse a `--columns` text, `customer=0,date=1`, into {field: column}; unknown fields are a UserError."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "=" not in part:
            raise UserError(f"--columns: {part!r} is not FIELD=COLUMN")
        name, col = (x.strip() for x in part.split("=", 1))
        if name not in fields:
            raise UserError(f"--columns: unknown field {name!r} (known: {', '.join(fields)})")
        if not col:
            raise UserError(f"--columns: no column given for {name!r}")
        mapping[name] = col
    return mapping


def source_name(path: Path, default: str) -> str:
    """The source name rows of a file are stored under: the file's stem, lower-case, in safe characters."""
    name = Path(path).name.split(".")[0].lower()
    return re.sub(r"[^a-z0-9_-]+", "_", name) or default


def stable_digits(*parts: Any, digits: int = 10) -> str:
    """A numeric id derived from content (like tau2's ids), the same on every run."""
    h = hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return str(int(h[:15], 16) % 10**digits).zfill(digits)


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sqlite_converter(column) -> Any:
    """A per-column converter to the storage SQLAlchemy's SQLite types use (so ORM reads and string comparisons
    agree); None stays NULL; returns None when values pass through unchanged.
    """
    t = column.type
    if isinstance(t, DateTime):
        cache: dict[datetime, str] = {}

        def dt(v):
            if v is None:
                return None
            got = cache.get(v)
            if got is None:
                if len(cache) > 100_000:
                    cache.clear()
                got = cache[v] = v.isoformat(" ", "microseconds")
            return got

        return dt
    if isinstance(t, JSON):
        return lambda v: None if v is None else json.dumps(v, ensure_ascii=False)
    if isinstance(t, Numeric) and not isinstance(t, Float):
        return lambda v: None if v is None else float(v)
    return None


class BulkWriter:
    """Inserts many rows per statement inside the caller's session (so the caller's transaction covers them).

    SQLite goes through the driver's executemany with values converted once (10x faster than the ORM);
    other databases go through SQLAlchemy Core executemany, which applies the column types.
    """

    def __init__(self, session: Session):
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    def insert(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        table = model.__table__
        for start in range(0, len(rows), CHUNK):
            part = rows[start : start + CHUNK]
            if self.sqlite:
                cols = list(part[0].keys())
                sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                convert = [_sqlite_converter(table.c[c]) for c in cols]
                values = [[r[c] for r in part] for c in cols]
                values = [list(map(f, v)) if f else v for f, v in zip(convert, values, strict=True)]
                self.session.connection().exec_driver_sql(sql, list(zip(*values, strict=True)))
            else:
                self.session.execute(insert(table), list(part))
        return len(rows)

    def insert_tuples(self, model: type[Base], columns: Sequence[str], rows: Iterable[tuple]) -> None:
        """Fast path for prepared rows: SQLite-ready values when `self.sqlite` (`json_value` for JSON columns), Python
        values otherwise.
        """
        table = model.__table__
        rows = list(rows)
        if not rows:
            return
        if self.sqlite:
            sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            conn = self.session.connection()
            for start in range(0, len(rows), CHUNK * 5):
                conn.exec_driver_sql(sql, rows[start : start + CHUNK * 5])
        else:
            for start in range(0, len(rows), CHUNK):
                part = rows[start : start + CHUNK]
                self.session.execute(insert(table), [dict(zip(columns, r, strict=False)) for r in part])

    def json_value(self, value: Any) -> Any:
        """`value` as `insert_tuples` takes it for a JSON column: JSON text on SQLite, the value itself otherwise."""
        return json.dumps(value) if self.sqlite else value

    def upsert(self, model: type[Base], rows: Sequence[dict[str, Any]], key: str = "id") -> tuple[int, int]:
        """Insert rows whose key is new, update the others; returns (inserted, updated)."""
        if not rows:
            return 0, 0
        existing = self._existing(model, key, [r[key] for r in rows])
        new = [r for r in rows if r[key] not in existing]
        old = [r for r in rows if r[key] in existing]
        self.insert(model, new)
        if old:
            self.session.execute(
                model.__table__.update().where(model.__table__.c[key] == _bindparam_key(key)),
                [{**{f"b_{key}": r[key]}, **{k: v for k, v in r.items() if k != key}} for r in old],
            )
        return len(new), len(old)

    def _empty(self, model: type[Base]) -> bool:
        return (
            self.session.execute(select(getattr(model, model.__mapper__.primary_key[0].name)).limit(1)).first() is None
        )

    def _existing(self, model: type[Base], key: str, keys: list[Any]) -> set:
        """The keys already in the table (nothing to look up when the table is empty, the usual first import)."""
        if self._empty(model):
            return set()
        found: set = set()
        if self.sqlite:  # plain driver SQL: compiling thousands of expanding IN clauses costs more than the lookups
            conn = self.session.connection()
            for start in range(0, len(keys), 900):
                part = keys[start : start + 900]
                sql = f"SELECT {key} FROM {model.__tablename__} WHERE {key} IN ({', '.join('?' * len(part))})"
                found.update(r[0] for r in conn.exec_driver_sql(sql, tuple(part)))
            return found
        col = getattr(model, key)
        for start in range(0, len(keys), 1000):
            found.update(self.session.scalars(select(col).where(col.in_(keys[start : start + 1000]))))
        return found

    def delete_where_in(self, model: type[Base], column: str, values: Sequence[Any]) -> None:
        if not values or self._empty(model):
            return
        if self.sqlite:
            conn = self.session.connection()
            for start in range(0, len(values), 900):
                part = tuple(values[start : start + 900])
                conn.exec_driver_sql(
                    f"DELETE FROM {model.__tablename__} WHERE {column} IN ({', '.join('?' * len(part))})", part
                )
            return
        col = getattr(model, column)
        for start in range(0, len(values), 1000):
            self.session.execute(delete(model).where(col.in_(values[start : start + 1000])))


def _bindparam_key(key: str):
    from sqlalchemy import bindparam

    return bindparam(f"b_{key}")


def record_run(session: Session, kind: str, path: Path | str, counts: dict[str, Any]) -> None:
    """Add a row to the import log: kind, source, its SHA-256 (if a file) and the counts."""
    from store.models import ImportRun

    sha = file_sha256(Path(path)) if Path(path).is_file() else ""
    session.add(ImportRun(kind=kind, source=str(path), sha256=sha, finished_at=datetime.now(), counts=counts))


def previous_runs(session: Session, kind: str, path: Path) -> int:
    """How many times this exact file content was imported before (reported, not refused: imports are idempotent)."""
    from sqlalchemy import func

    from store.models import ImportRun

    sha = file_sha256(path)
    return (
        session.scalar(
            select(func.count()).select_from(ImportRun).where(ImportRun.kind == kind, ImportRun.sha256 == sha)
        )
        or 0
    )
