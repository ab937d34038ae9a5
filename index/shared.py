"""One read-only search index per process, shared by every chat session and rebuilt when `index build` changes it.

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
    """Process-wide cache of SearchIndex handles; thread-safe for concurrent Gradio sessions.

    Holding indexes across sessions is the point of this class, so it is the one deliberate piece of shared state:
    the agent and the UI reach it through `shared_index`, tests make their own registry.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._embedders: dict[tuple[str, int | None], LocalEmbeddingFunction] = {}
        self._entries: dict[tuple, _Entry] = {}
        self.builds = 0  # SearchIndex objects made, for tests and logs
        self.reopens = 0  # local Chroma clients reopened because a collection changed

    @staticmethod
    def location(settings) -> str:
        return settings.chroma_url or str(settings.chroma_dir.resolve())

    def embedder(self, settings) -> LocalEmbeddingFunction:
        from index.embeddings import LocalEmbeddingFunction
        from shopdesk.models import resolve_embedding_model

        key = (str(resolve_embedding_model(settings)), settings.torch_threads)
        with self._lock:
            if key not in self._embedders:
                self._embedders[key] = LocalEmbeddingFunction(key[0], threads=key[1])
            return self._embedders[key]

    def client(self, settings):
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
        """The shared index for these settings; a fresh one (same model) if the index was rebuilt."""
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
        with self._lock:
            self._entries.clear()
            self._clients.clear()
            self._embedders.clear()


REGISTRY = IndexRegistry()


def shared_index(settings, store_url: str | None = None) -> SearchIndex:
    """The process's SearchIndex for these settings (see IndexRegistry)."""
    return REGISTRY.get(settings, store_url)
