"""The numbered migrations build exactly the schema the models describe (a model change without its migration, or
the other way round, fails here).
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.models import Base


def test_migrations_match_the_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
