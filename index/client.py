"""Opening Chroma: an embedded persistent folder (default) or a Chroma server (settings.chroma_url).

chromadb is imported inside the functions: importing it takes seconds, and `shopdesk --help` or the tool registry
must not pay for it.
"""

from __future__ import annotations

from urllib.parse import urlparse

from shopdesk.output import UserError

PRODUCTS = "products"
REVIEWS = "reviews"
BUILD_HASH = "build_hash"  # collection metadata key: `index build` writes it, index.shared compares it
VECTORS = "vectors"  # collection metadata key: the kind of vectors it holds (LocalEmbeddingFunction.vectors)


def open_chroma(settings, fresh: bool = False):
    """A Chroma client for the configured index, or a UserError saying what is wrong with it.

    fresh: for a local folder, a client on a new chromadb System rather than the one this process already holds
    for that folder (see forget_local_system); a server client is always fresh.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise UserError(f"SHOPDESK_CHROMA_URL {settings.chroma_url!r} is not an http(s)://host:port URL")
        try:
            client = chromadb.HttpClient(
                host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https", settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:  # connection refused, DNS, TLS, version mismatch: all mean "cannot use it"
            raise UserError(f"cannot reach the Chroma server at {settings.chroma_url}: {_short(exc)}") from exc
        return client
    path = settings.chroma_dir
    path.mkdir(parents=True, exist_ok=True)
    if fresh:
        forget_local_system(str(path))
    try:
        client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        client.list_collections()
    except Exception as exc:
        raise UserError(
            f"the Chroma folder {path} cannot be opened by chromadb {chromadb.__version__} "
            f"(written by another version or damaged: {_short(exc)}). "
            f"Move it away or delete it and run `shopdesk index build` to rebuild it."
        ) from exc
    return client


def forget_local_system(path: str) -> None:
    """Make the next PersistentClient on `path` start a new chromadb System instead of reusing this process's one.

    chromadb keeps one System per folder per process, and that System's in-memory vector segments never see what
    another process (`shopdesk index build`) wrote: only a new System reads the folder again. The old System is
    not stopped, so handles still in use by a running search keep working; it is freed when the last one goes.
    Nothing here calls Client.close(), which would otherwise decrement the new System's reference count.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    # chromadb's public clear_system_cache() forgets every folder and server client of the process; only this
    # folder's entry should go
    with SharedSystemClient._refcount_lock:
        SharedSystemClient._identifier_to_system.pop(path, None)
        SharedSystemClient._identifier_to_refcount.pop(path, None)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def get_collection(client, name: str, ef, create: bool = False):
    """The named collection with our embedding function; None if it does not exist and create is False."""
    from chromadb.errors import NotFoundError

    if create:
        return client.get_or_create_collection(name, embedding_function=ef, configuration={"hnsw": {"space": "cosine"}})
    try:
        return client.get_collection(name, embedding_function=ef)
    except (NotFoundError, ValueError):
        return None
