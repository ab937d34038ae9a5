"""Opening Chroma: an embedded persistent folder (default) or a Chroma server (settings.chroma_url)."""

from __future__ import annotations

from urllib.parse import urlparse

from shopdesk.output import UserError

PRODUCTS = "products"
REVIEWS = "reviews"


def open_chroma(settings):
    """A Chroma client for the configured index, or a UserError saying what is wrong with it."""
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
