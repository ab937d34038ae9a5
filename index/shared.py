"""Read-only search indexes shared by every chat session of a shop, rebuilt when `index build` changes them.

An IndexRegistry is an ordinary object: the app's services (ui.app.AppServices) own one and hand it to each session
through its ShopContext (`ctx.indexes`), so a test or a server for several shops can hold as many as it needs. A
context made without one (the CLI, scripts) gets `default_registry()`, made on first use.

A SearchIndex holds the BM25 corpus, the Chroma client and the embedding model; building one per session cost a
model load and a full corpus read each time. The registry keys indexes by (Chroma location, collections, store
URL), loads the embedding model once per (model, threads), and compares each collection's `build_hash` (written
by `index build`) with the one the cached index was made from, so a rebuild is seen on the next lookup. For a local
Chroma folder a changed hash also means a new Chroma client: the old one's vectors would not show what another
process built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from index.client import BUILD_HASH, PRODUCTS, REVIEWS, open_chroma
from index.search import SearchIndex

if TYPE_CHECKING:
    from index.embeddings import LocalEmbeddingFunction

Version = tuple[tuple[str, str | None, str | None], ...]


@dataclass
class _Entry:
    index: SearchIndex
    version: Version


@dataclass
class _Client:
    client: Any
    seen: dict[str, tuple[str | None, str | None]]  # collection -> (id, build hash) since this client was opened


def index_version(client, names: tuple[str, ...] = (PRODUCTS, REVIEWS)) -> Version:
    """(name, collection id, build hash) per collection; id None where the collection does not exist yet."""
    from chromadb.errors import NotFoundError

    out = []
    for name in names:
        try:
            col = client.get_collection(name)
        except (NotFoundError, ValueError):
            out.append((name, None, None))
            continue
        out.append((name, str(col.id), (col.metadata or {}).get(BUILD_HASH)))
    return tuple(out)


class IndexRegistry:
    """A cache of SearchIndex handles shared by the sessions it is handed to; thread-safe for concurrent sessions.

    Holding indexes across sessions is the point of this class. It is passed in, never reached for: the tools take it
    from their ShopContext (`ctx.indexes`), whose owner (the app's services, a test) decides which sessions share it.
    Two registries share nothing: each opens its own clients, embedding models and indexes.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._embedders: dict[tuple[str, int | None], LocalEmbeddingFunction] = {}
        self._entries: dict[tuple, _Entry] = {}
        self.builds = 0  # SearchIndex objects made, for tests and logs
        self.reopens = 0  # local Chroma clients reopened because a collection changed

    def __copy__(self) -> IndexRegistry:
        return self  # shared by identity: a copied context still uses its owner's registry

    def __deepcopy__(self, memo: dict) -> IndexRegistry:
        return self

    @staticmethod
    def location(settings) -> str:
        """Where the settings' Chroma lives: the server's URL, or the local folder's absolute path."""
        return settings.chroma_url or str(settings.chroma_dir.resolve())

    def embedder(self, settings) -> LocalEmbeddingFunction:
        """The embedding model for these settings, loaded once per (model, threads) in this registry."""
        from index.embeddings import embedding_function
        from shopdesk.models import embedding_onnx_path, resolve_embedding_model

        onnx = str(embedding_onnx_path(settings)) if settings.embedding_runtime != "torch" else None
        key = (str(resolve_embedding_model(settings)), settings.torch_threads, onnx)
        with self._lock:
            if key not in self._embedders:
                self._embedders[key] = embedding_function(settings)
            return self._embedders[key]

    def client(self, settings):
        """This registry's Chroma client for the settings' location, opened on first use."""
        where = self.location(settings)
        with self._lock:
            if where not in self._clients:
                self._clients[where] = _Client(open_chroma(settings), {})
            return self._clients[where].client

    def _current_client(self, settings, version: Version):
        """The location's client, reopened if this is a local folder whose collections changed since it was opened.

        chromadb's embedded client loads a collection's vectors once and never sees another process's writes, so
        after `index build` ran elsewhere the only way to search the new vectors is a new client. A server
        (HttpClient) always answers from its current state and is kept.
        """
        where = self.location(settings)
        with self._lock:
            held = self._clients[where]
            changed = any(held.seen.get(name, (cid, build)) != (cid, build) for name, cid, build in version)
            if changed and not settings.chroma_url:
                held = self._clients[where] = _Client(open_chroma(settings, fresh=True), {})
                self.reopens += 1
            held.seen.update({name: (cid, build) for name, cid, build in version})
            return held.client

    def get(self, settings, store_url: str | None = None,
            collections: tuple[str, ...] = (PRODUCTS, REVIEWS)) -> SearchIndex:
        """This registry's index for these settings; a fresh one (same model) if the index was rebuilt."""
        client = self.client(settings)
        key = (self.location(settings), collections, store_url or settings.db_url)
        try:
            version = index_version(client, collections)
        except Exception:
            # the server went away or the folder broke: drop the client so the next call reconnects, and let
            # SearchIndex raise its own clear error
            with self._lock:
                self._clients.pop(self.location(settings), None)
                self._entries.pop(key, None)
            raise
        ef = self.embedder(settings)
        client = self._current_client(settings, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.version != version:
                entry = _Entry(SearchIndex(settings, client=client, ef=ef), version)
                self._entries[key] = entry
                self.builds += 1
            return entry.index

    def clear(self) -> None:
        """Forget every index, client and embedding model this registry holds."""
        with self._lock:
            self._entries.clear()
            self._clients.clear()
            self._embedders.clear()


_default: IndexRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> IndexRegistry:
    """The registry of contexts made without one (the CLI, scripts), made on first use.

    The app's services make their own; only a caller that was handed no registry ends up here.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = IndexRegistry()
        return _default
