"""`shopdesk store ...` end to end through the CLI: JSON output, exit codes, clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from shopdesk.cli import app
from shopdesk.datasets import cdnow_transactions

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["store", *args])


def test_init_sample_stats_and_if_empty(data_dir):
    r = run("init", "--sample", "--customers", "25", "--seed", "2", "--json")
    assert r.exit_code == 0, r.output
    built = json.loads(r.stdout)
    assert built["built"] and built["counts"]["customers"] == 25
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["counts"]["customers"] == 25 and stats["counts"]["orders"] == built["counts"]["orders"]
    assert stats["orders_from"] < stats["orders_to"] <= "2026-10-31T23:59:59"
    again = run("init", "--sample", "--if-empty", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["built"] is False
    refused = run("init", "--sample")
    assert refused.exit_code == 2 and "already has customers" in refused.output
    assert (data_dir / "shop.db").exists()


def test_import_transactions_cli_and_errors(data_dir, tmp_path):
    head = tmp_path / "cdnow.txt"
    head.write_text("\n".join(cdnow_transactions().read_text().splitlines()[:51]) + "\n")
    r = run(
        "import",
        "transactions",
        str(head),
        "--columns",
        "customer=0,date=1,quantity=2,amount=3",
        "--delimiter",
        "ws",
        "--date-format",
        "%Y%m%d",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["orders"] == 48  # 50 lines, two customers bought twice on one day
    detected = run("import", "transactions", str(head), "--columns", "customer=0,date=1,quantity=2,amount=3",
                   "--currency", "USD")
    assert detected.exit_code == 0, detected.output
    assert "delimiter whitespace" in detected.stdout and "date format %Y%m%d" in detected.stdout
    assert "USD" in detected.stdout
    bad = run(
        "import", "transactions", str(head), "--columns", "customer=0,date=1,amount=3,colour=4", "--delimiter", "ws"
    )
    assert bad.exit_code == 2 and "unknown field 'colour'" in bad.output
    bad = run(
        "import",
        "transactions",
        str(head),
        "--columns",
        "customer=0,date=1,amount=3",
        "--delimiter",
        "ws",
        "--date-format",
        "%Y%m%d",
        "--no-header",
    )  # CDNOW's first line is a header: its 'date' is no date
    assert bad.exit_code == 2 and "line 1" in bad.output and "bad date 'date'" in bad.output
    assert "Traceback" not in bad.output


def test_import_tau2_and_migrate(data_dir):
    r = run("import", "tau2", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["customers"] == 500
    m = run("migrate", "--json")
    assert m.exit_code == 0 and json.loads(m.stdout)["version"]
