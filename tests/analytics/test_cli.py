"""The analytics commands: shopdesk segments, churn score, churn evaluate, profile, offers."""

import csv
import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from shopdesk.cli import app
from store.db import open_store


@pytest.fixture
def cli_shop(settings, helpers):
    store = open_store(settings.db_url)
    helpers.simulate_shop(store, n_customers=200, seed=11)
    yield store
    store.dispose()


def run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_segments_and_churn_score(cli_shop, tmp_path):
    res = run("segments", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["customers"] > 0 and len(data["rows"]) == 10 and data["as_of"]
    text = run("segments", "--as-of", "2024-05-31")
    assert text.exit_code == 0 and "as of 2024-05-31" in text.stdout

    out = tmp_path / "churn.csv"
    res = run("churn", "score", "--top", "7", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)
    assert len(table["rows"]) == 7 and table["churn_method"] == "lightgbm"
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["customer_id"] for r in rows] == [r["customer_id"] for r in table["rows"]]
    everyone = json.loads(run("churn", "score", "--top", "0", "--json").stdout)
    assert len(everyone["rows"]) == everyone["customers_scored"] == data["customers"]


def test_profile_and_offers(cli_shop):
    top = json.loads(run("churn", "score", "--top", "1", "--json").stdout)["rows"][0]
    res = run("profile", top["customer_id"])
    assert res.exit_code == 0 and top["customer_id"] in res.stdout
    res = run("offers", "--segment", "at risk", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["sent"] is False


def test_errors_are_one_line(cli_shop):
    for args, message in (
        (("segments", "--as-of", "1990-01-01"), "before the shop's first order"),
        (("churn", "score", "--segment", "whales"), "unknown segment"),
        (("churn", "score", "--tier", "gold"), "--tier must be"),
        (("profile", "ghost@example.com"), "no customer"),
    ):
        res = run(*args)
        assert res.exit_code == 2, res.output
        assert res.stderr.startswith("error: ") and message in res.stderr and "Traceback" not in res.output


def test_churn_evaluate_json_shape(cli_shop, tmp_path, helpers):
    # Export the simulated shop's purchases as a transactions file, as a shop would hand one over.
    from sqlalchemy import select

    from store.models import Order

    path = tmp_path / "tx.csv"
    with cli_shop.read() as s, open(path, "w") as f:
        f.write("customer_id,date,quantity,amount\n")
        f.writelines(f"{cid},{when:%Y-%m-%d},1,{total}\n" for cid, when, total in s.execute(select(Order.customer_id, Order.created_at, Order.total)
                                          .where(Order.status != "cancelled")))
    as_of = (helpers.END - timedelta(days=100)).date().isoformat()
    res = run("churn", "evaluate", "--transactions", str(path), "--as-of", as_of, "--horizon-days", "90", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for model in ("ours", "bgnbd"):
        assert set(data[model]) == {"auc", "pr_auc", "brier", "top_decile_lift"}
        assert all(0 <= v for v in data[model].values())
    assert data["customers"] > 100 and 0 < data["churn_rate"] < 1
    text = run("churn", "evaluate", "--transactions", str(path), "--as-of", as_of)
    assert "BG/NBD" in text.stdout and "Top-decile lift" in text.stdout
    bad = run("churn", "evaluate", "--transactions", str(path), "--as-of", helpers.END.date().isoformat())
    assert bad.exit_code == 2 and "horizon is longer than the data" in bad.stderr
