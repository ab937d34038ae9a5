"""The shop's data store: SQLAlchemy models, numbered migrations, importers and the sample shop."""

from store.db import Store, open_store

__all__ = ["Store", "open_store"]
