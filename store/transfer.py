"""Moving a shop to another database: every table of one store into an empty store elsewhere, in one transaction.

    shopdesk store copy --to postgresql+psycopg://shop@db.internal:5432/shop

The embedded default keeps the shop in a SQLite file; a shop that outgrows it moves to PostgreSQL (the production
engine) with this. The destination is migrated to the newest schema first and must hold no rows. PostgreSQL is loaded
with COPY (psycopg's `Cursor.copy`, the engine's bulk path: rows stream, no statement per row); any other destination
with batched INSERTs. Everything is written in one transaction, so a failure leaves the destination as it was.
Afterwards each autoincrement key's sequence continues after the copied rows.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from sqlalchemy import JSON, Integer, func, insert, select, text

from shopdesk.output import UserError
from store.db import Store, open_store
from store.models import Base

BATCH = 20_000


def _rows(src: Store, table, batch: int):
    with src.engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(select(table))
        yield from result.partitions(batch)


def copy_store(src: Store, dst_url: str, *, progress: bool = True, batch: int = BATCH) -> dict[str, Any]:
    """Copy every table of `src` into the (empty) store at `dst_url`; rows per table, seconds and the method used."""
    from tqdm import tqdm

    dst = open_store(dst_url)
    try:
        tables = list(Base.metadata.sorted_tables)  # parents before children: foreign keys hold at every row
        with dst.engine.connect() as conn:
            busy = [t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar()]
        if busy:
            raise UserError(f"The destination store already holds data (tables: {', '.join(busy)}); "
                            "copy into an empty database.")
        with src.engine.connect() as conn:
            counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() or 0 for t in tables}
        postgres = dst.engine.dialect.name == "postgresql"
        report: dict[str, Any] = {"method": "COPY" if postgres else "INSERT", "tables": {}}
        start = time.perf_counter()
        bar = tqdm(total=sum(counts.values()), desc="copy store", unit="row", file=sys.stderr,
                   disable=not progress, unit_scale=True)
        with dst.engine.begin() as conn:  # one transaction: all tables or none
            for table in tables:
                if not counts[table.name]:
                    continue
                t0 = time.perf_counter()
                if postgres:
                    _copy_postgres(conn, src, table, batch, bar)
                else:
                    for rows in _rows(src, table, batch):
                        conn.execute(insert(table), [dict(r._mapping) for r in rows])
                        bar.update(len(rows))
                report["tables"][table.name] = {"rows": counts[table.name],
                                                "seconds": round(time.perf_counter() - t0, 2)}
            if postgres:
                _continue_sequences(conn, tables)
        bar.close()
        report["rows"] = sum(counts.values())
        report["seconds"] = round(time.perf_counter() - start, 2)
        return report
    finally:
        dst.dispose()


def _copy_postgres(conn, src: Store, table, batch: int, bar) -> None:
    """COPY one table's rows through the destination connection's own psycopg cursor (same transaction)."""
    from psycopg.types.json import Json

    columns = list(table.columns)
    json_at = [i for i, c in enumerate(columns) if isinstance(c.type, JSON)]
    names = ", ".join(f'"{c.name}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for rows in _rows(src, table, batch):
            for row in rows:
                values = list(row)
                for i in json_at:
                    if values[i] is not None:
                        values[i] = Json(values[i])
                copy.write_row(values)
            bar.update(len(rows))


def _continue_sequences(conn, tables) -> None:
    """After COPY, each serial key's sequence goes on after the largest copied key (else the next insert collides)."""
    for table in tables:
        for col in table.primary_key.columns:
            if isinstance(col.type, Integer) and col.autoincrement in (True, "auto"):
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', '{col.name}'), "
                    f'COALESCE(MAX("{col.name}"), 1), MAX("{col.name}") IS NOT NULL) FROM "{table.name}"'))
