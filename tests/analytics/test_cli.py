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


def test_churn_evaluate_takes_an_export_as_it_comes(cli_shop, tmp_path, helpers):
    """An Online Retail-style export: invoices of several lines, unit prices and no amount column, customer ids
    written as floats, day-first dates, cancellation invoices and lines without a customer. The importer's mapping
    and --skip-bad are all `churn evaluate` needs.
    """
    from sqlalchemy import select

    from store.models import Order

    path = tmp_path / "export.csv"
    with cli_shop.read() as s, open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"])
        rows = s.execute(select(Order.id, Order.customer_id, Order.created_at, Order.total)
                         .where(Order.status != "cancelled").order_by(Order.created_at)).all()
        for k, (oid, cid, when, total) in enumerate(rows):
            num = f"{int(cid[1:])}.0"
            stamp = f"{when:%d/%m/%Y %H:%M}"
            w.writerow([oid, "A1", 2, stamp, f"{float(total) / 4:.2f}", num])
            w.writerow([oid, "B2", 1, stamp, f"{float(total) / 2:.2f}", num])
            if k % 10 == 0:
                w.writerow([f"C{oid}", "B2", -1, stamp, f"{float(total) / 2:.2f}", num])
            if k % 25 == 0:
                w.writerow([oid, "Z9", 1, stamp, "1.00", ""])
    as_of = (helpers.END - timedelta(days=100)).date().isoformat()
    columns = "order=InvoiceNo,product=StockCode,quantity=Quantity,date=InvoiceDate,price=UnitPrice,customer=CustomerID"
    res = run("churn", "evaluate", "--transactions", str(path), "--columns", columns, "--skip-bad", "--as-of", as_of,
              "--horizon-days", "90", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for model in ("ours", "bgnbd"):
        assert set(data[model]) == {"auc", "pr_auc", "brier", "top_decile_lift"}
        assert all(v >= 0 for v in data[model].values())
    assert data["customers"] > 100 and 0 < data["churn_rate"] < 1
    notes = " ".join(data["notes"])
    assert "delimiter comma" in notes and "date format %d/%m/%Y %H:%M" in notes
    assert "missing customer" in notes and "returns recorded" in notes
    text = run("churn", "evaluate", "--transactions", str(path), "--columns", columns, "--skip-bad", "--as-of", as_of)
    assert "BG/NBD" in text.stdout and "Top-decile lift" in text.stdout
    strict = run("churn", "evaluate", "--transactions", str(path), "--columns", columns, "--as-of", as_of)
    assert strict.exit_code == 2 and "no customer id" in strict.stderr  # without --skip-bad a bad line stops it
    bad = run("churn", "evaluate", "--transactions", str(path), "--columns", columns, "--skip-bad",
              "--as-of", helpers.END.date().isoformat())
    assert bad.exit_code == 2 and "horizon is longer than the data" in bad.stderr
    old = run("churn", "evaluate", "--transactions", str(path), "--columns", "customer_id,date,amount",
              "--as-of", as_of)
    assert old.exit_code == 2 and "not FIELD=COLUMN" in old.stderr