"""The CLI on a built index: `shopdesk index build`, `search products|reviews|insights|evaluate --json`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli_env(search_env, monkeypatch):
    settings = search_env["settings"]
    monkeypatch.setenv("SHOPDESK_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("SHOPDESK_CHROMA_URL", raising=False)
    from shopdesk.cli import app

    return app


def _run(app, *args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_index_build_is_incremental_from_the_cli(cli_env):
    code, out, _ = _run(cli_env, "index", "build", "--json", "--quiet")
    assert code == 0, out
    report = json.loads(out)
    assert report["products"]["embedded"] == 0 and report["products"]["unchanged"] == report["products"]["total"]


def test_search_products_json(cli_env):
    code, out, err = _run(cli_env, "search", "products", "Sonos Arc", "--k", "3", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 3 and set(rows[0]) == {"product_id", "title", "category", "price", "score"}
    assert "Sonos Arc" in rows[0]["title"]


def test_search_reviews_and_insights_json(cli_env):
    code, out, err = _run(cli_env, "search", "reviews", "stopped working", "--max-rating", "2", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(r["rating"] <= 2 and r["review_id"] and r["date"] for r in rows)
    code, out, err = _run(cli_env, "search", "insights", "--category", "Speakers", "--json")
    assert code == 0, err
    assert json.loads(out)["reviews"] > 0


def test_evaluate_json(cli_env, tmp_path):
    # a three-query slice of the labelled set keeps this fast; the full set runs in test_search.py
    from index.evaluate import DEFAULT_SET

    lines = [line for line in DEFAULT_SET.read_text().splitlines() if '"Sonos Arc"' in line or '"drone"' in line
             or '"soundbar under $200"' in line]
    small = tmp_path / "relevance-small.jsonl"
    small.write_text("\n".join(lines) + "\n")
    code, out, err = _run(cli_env, "search", "evaluate", "--set", str(small), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["results"]) == {"vector", "bm25", "hybrid"}
    assert report["queries"] == 3 and report["results"]["hybrid"]["ndcg_at_10"] > 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "tv", "relevant": {"X": 2}}\nnot json\n')
    code, _out, err = _run(cli_env, "search", "evaluate", "--set", str(bad))
    assert code == 2 and "bad.jsonl, line 2: not JSON" in err


def test_cli_errors_are_one_line(cli_env):
    code, _out, err = _run(cli_env, "search", "products", "tv", "--min-price", "-3")
    assert code == 2 and err.strip().startswith("error: min_price must be a price")
    code, _out, err = _run(cli_env, "search", "products", "")
    assert code == 2 and "query is empty" in err
