"""Opening the store: engine set-up (SQLite WAL or PostgreSQL), migrations, and transactional sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for `url`; a SQLite file gets its folder and the pragmas above on every connection."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    """The Alembic configuration that migrates the store at `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Store:
    """A handle on the shop's database. Every write goes through `transaction()`."""

    def __init__(self, url: str, engine: Engine | None = None):
        self.url = url
        self.engine = engine or make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest numbered migration."""
        cfg = alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def is_initialised(self) -> bool:
        return inspect(self.engine).has_table("alembic_version")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits as one unit, or rolls back entirely on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; anything written in it is rolled back. Objects loaded in it keep their
        loaded attributes after the block (detached, not expired), so results can be used afterwards;
        relationships that were never loaded cannot be lazy-loaded then.
        """
        session = self._sessions()
        try:
            yield session
        finally:
            session.expunge_all()  # detach first, so the rollback does not expire what was read
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open the configured store (settings' database URL unless given) and apply pending migrations."""
    if url is None:
        from shopdesk.settings import get_settings

        url = get_settings().db_url
    store = Store(url)
    if migrate:
        store.migrate()
    return store
