"""Server mode: a real `chroma run` process on 127.0.0.1, built and queried through HttpClient, then stopped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture
def chroma_server(tmp_path, shop_helpers):
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        found = shutil.which("chroma")
        assert found, "the chroma server script is missing: chromadb (a dependency) installs it"
        exe = Path(found)
    port = shop_helpers.free_port()
    log = open(tmp_path / "chroma.log", "wb")  # noqa: SIM115 (the server writes to it until the fixture ends)
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"chroma server did not start: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_build_and_search_through_a_chroma_server(chroma_server, tmp_path, embedder, search_env):
    from index.build import build_index
    from index.client import open_chroma
    from index.search import Filters, SearchIndex
    from shopdesk.settings import Settings
    from tools.context import ShopContext
    from tools.search import review_insights, search_products

    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server,
                        database_url=search_env["settings"].db_url)
    client = open_chroma(settings)
    assert type(client).__name__ == "Client" and client.heartbeat() > 0
    report = build_index(search_env["store"], settings, progress=False, ef=embedder)
    assert report.target == chroma_server
    assert report.products.total == len(search_env["products"])
    again = build_index(search_env["store"], settings, progress=False, ef=embedder)
    assert again.products.embedded == 0 and again.reviews.embedded == 0

    index = SearchIndex(settings, ef=embedder)
    hits, _, _ = index.search_products("Sonos Arc soundbar", Filters(max_price=1000), k=3)
    assert "Sonos Arc" in hits[0].metadata["title"]
    ctx = ShopContext(store=search_env["store"], settings=settings, role="marketer")
    ctx.cache["search_index"] = index
    assert search_products(ctx, "drone under $500", k=5).products
    assert review_insights(ctx, category="Speakers").reviews > 0
    assert not (tmp_path / "data" / "chroma").exists(), "server mode must not write a local Chroma folder"


def test_registry_keeps_its_server_client_across_a_rebuild(chroma_server, tmp_path, speaker_shop, embedder):
    """A server answers from its current state: a rebuild is seen through the same HttpClient, never reopened."""
    from decimal import Decimal

    from index.build import build_index
    from index.search import Filters
    from index.shared import IndexRegistry
    from store.models import Product, Variant

    local, store = speaker_shop(tmp_path)
    settings = local.model_copy(update={"chroma_url": chroma_server})
    registry = IndexRegistry()
    build_index(store, settings, progress=False, ef=embedder)
    first = registry.get(settings)
    assert first.search_products("Acme speaker", k=1)[0]
    with store.transaction() as s:
        s.add(Product(id="p9", name="Zorblax Boombox 9000", category="Speakers", brand="Zorblax",
                      description="Loud boombox for parties", rating=4.5, rating_count=2))
        s.add(Variant(id="v9", product_id="p9", price=Decimal("99.00"), available=True))
    build_index(store, settings, progress=False, ef=embedder)  # its own HttpClient, as another process would
    after = registry.get(settings)
    assert after is not first and after.client is first.client and registry.reopens == 0
    assert after.search_products("Zorblax boombox", k=3, mode="vector")[0][0].id == "p9"
    assert after.search_products("boombox", Filters(max_price=120), k=3)[0][0].id == "p9"
    registry.clear()
    store.dispose()
