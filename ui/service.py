"""The marketer console's panels: analytics tools called directly (no LLM), their results turned into tables and charts.

Only the panels' own controls fill them (the chat never does), so a panel always shows what its filters ask for.
The converters read a result's JSON without depending on every field name of the analytics models.
"""

from __future__ import annotations

import csv
import inspect
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shopdesk.output import to_jsonable

log = logging.getLogger(__name__)

CHURN_TOOL = "score_churn"
SEGMENTS_TOOL = "summarize_segments"
INSIGHTS_TOOL = "review_insights"
JOURNEY_TOOL = "get_customer_journey"
FUNNEL_TOOL = "journey_funnel"
PANEL_TOOLS = (CHURN_TOOL, SEGMENTS_TOOL, INSIGHTS_TOOL, JOURNEY_TOOL, FUNNEL_TOOL)
FUNNEL_ORDER = ["view", "cart", "purchase", "review", "return"]  # the chart's bars, in funnel order

PANEL_TOP_N = 1000  # the console lists (and charts) up to this many customers; score_churn's maximum
RISK_BUCKETS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0000001]
RISK_LABELS = ["0-20%", "20-40%", "40-60%", "60-80%", "80-100%"]


@dataclass
class ChurnView:
    table: pd.DataFrame
    risk: pd.DataFrame  # columns: risk (bucket label), customers
    as_of: str | None
    note: str = ""
    scored: int | None = None  # customers matching the filters, before the list was cut


@dataclass
class SegmentsView:
    sizes: pd.DataFrame  # columns: segment, customers
    as_of: str | None
    note: str = ""


@dataclass
class InsightsView:
    aspects: pd.DataFrame  # columns: aspect, sentiment, mentions
    ratings: pd.DataFrame  # columns: rating, reviews
    quotes: list[str] = field(default_factory=list)
    subject: str = ""
    note: str = ""


def find_tool(name: str, role: str = "marketer") -> Callable:
    """The tool function `name` as offered to `role` (the registry lists every tool of every area)."""
    from tools.registry import tool_functions

    return {fn.__name__: fn for fn in tool_functions(role)}[name]


def run_tool(name: str, ctx: Any, **wanted: Any) -> Any:
    """Call a tool with the filters it accepts (others are dropped; None, "" and "All" mean 'tool default')."""
    fn = find_tool(name)
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in wanted.items()
              if k in params and v not in (None, "", "All") and not (isinstance(v, str) and not v.strip())}
    return fn(ctx, **kwargs)


def call_tool(name: str, ctx: Any, **wanted: Any) -> dict[str, Any]:
    """run_tool's result as JSON."""
    return to_jsonable(run_tool(name, ctx, **wanted))


# ---- reading results (JSON) without depending on every field name of the analytics models ----


def _rows(result: Any, prefer: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    if isinstance(result, list):
        return [r for r in result if isinstance(r, dict)]
    if not isinstance(result, dict):
        return []
    for key in prefer:
        value = result.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return value
    for value in result.values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return value
    return []


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        elif isinstance(value, list):
            out[name] = ", ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def as_of(result: Any) -> str | None:
    """The first non-empty value of a key containing `as_of` in a tool result, as text."""
    if isinstance(result, dict):
        for key, value in result.items():
            if "as_of" in key and value:
                return str(value)
    return None


def _first(columns: list[str], *needles: str) -> str | None:
    for needle in needles:
        for col in columns:
            if col == needle:
                return col
    for needle in needles:
        for col in columns:
            if needle in col.lower():
                return col
    return None


def churn_view(result: Any) -> ChurnView:
    """A churn result as a table sorted by risk and counts per risk bucket."""
    rows = [_flat(r) for r in _rows(result, ("customers", "rows", "items", "results"))]
    table = pd.DataFrame(rows)
    risk_col = _first(list(table.columns), "churn_probability", "p_churn", "churn_risk", "probability", "risk", "churn")
    if risk_col is not None:
        values = pd.to_numeric(table[risk_col], errors="coerce")
        table = table.assign(**{risk_col: values.round(3)}).sort_values(risk_col, ascending=False, kind="stable")
        buckets = pd.cut(values, RISK_BUCKETS, labels=RISK_LABELS, right=False)
        counts = buckets.value_counts().reindex(RISK_LABELS, fill_value=0)
        risk = pd.DataFrame({"risk": RISK_LABELS, "customers": counts.to_numpy().astype(int)})
    else:
        risk = pd.DataFrame({"risk": RISK_LABELS, "customers": [0] * len(RISK_LABELS)})
    note = "" if rows else "No customers match these filters."
    scored = result.get("customers_scored") if isinstance(result, dict) else None
    return ChurnView(table=in_currency(table.reset_index(drop=True), result), risk=risk, as_of=as_of(result),
                     note=note, scored=scored)


def in_currency(table: pd.DataFrame, result: Any) -> pd.DataFrame:
    """`table` with its amount columns named in the result's currency ("value_12m_usd" becomes "value_12m_gbp" for a
    pound shop): the tools name amount fields _usd, and their `currency` says what the amounts are in.
    """
    currency = result.get("currency") if isinstance(result, dict) else None
    if not currency or currency == "USD":
        return table
    suffix = "_" + str(currency).lower()
    return table.rename(columns={c: c[: -len("_usd")] + suffix for c in table.columns
                                 if isinstance(c, str) and c.endswith("_usd")})


def segments_view(result: Any) -> SegmentsView:
    """A segment result as customers per segment."""
    table = pd.DataFrame([_flat(r) for r in _rows(result, ("segments", "rows", "items"))])
    if table.empty:
        return SegmentsView(pd.DataFrame({"segment": [], "customers": []}), as_of(result), "No segments to show.")
    cols = list(table.columns)
    name = _first(cols, "segment", "name", "label") or cols[0]
    size = _first(cols, "customers", "size", "count", "n_customers", "n")
    if size is None:
        size = next((c for c in cols if pd.api.types.is_numeric_dtype(table[c])), None)
    sizes = pd.DataFrame({"segment": table[name].astype(str), "customers": pd.to_numeric(table[size], errors="coerce")})
    return SegmentsView(sizes=sizes, as_of=as_of(result))


def insights_view(result: Any) -> InsightsView:
    """A review-insights result as aspect rows and quotes."""
    result = result if isinstance(result, dict) else {}
    aspects: list[dict[str, Any]] = []
    quotes: list[str] = []
    for key, value in result.items():
        if not isinstance(value, list) or not value or not isinstance(value[0], dict):
            continue
        lowered = key.lower()
        if "aspect" not in lowered and "positive" not in lowered and "negative" not in lowered:
            continue
        sentiment = "negative" if "neg" in lowered else "positive" if "pos" in lowered else ""
        for item in value:
            name = item.get("aspect") or item.get("name") or item.get("label")
            count = item.get("count") or item.get("mentions") or item.get("n") or 0
            kind = item.get("sentiment") or sentiment or "mentioned"
            if name:
                aspects.append({"aspect": str(name), "sentiment": str(kind), "mentions": int(count)})
            for q in (item.get("quotes") or item.get("examples") or [])[:2]:
                text = q.get("text") if isinstance(q, dict) else q
                if text:
                    quotes.append((kind, f"**{name}** ({kind}): {_quote(str(text))}"))
    ratings = pd.DataFrame({"rating": [], "reviews": []})
    dist = result.get("rating_distribution") or result.get("ratings")
    if isinstance(dist, dict):
        ratings = pd.DataFrame({"rating": [f"{k}★" for k in dist], "reviews": [int(v) for v in dist.values()]})
    elif isinstance(dist, list) and dist and isinstance(dist[0], dict):
        df = pd.DataFrame(dist)
        rc = _first(list(df.columns), "rating", "stars") or df.columns[0]
        nc = _first(list(df.columns), "count", "reviews", "n") or df.columns[-1]
        ratings = pd.DataFrame({"rating": df[rc].astype(str) + "★", "reviews": df[nc]})
    subject = str(result.get("scope") or result.get("product") or result.get("category") or "")
    note = "" if aspects or not ratings.empty else "No reviews found for this product or category."
    return InsightsView(
        aspects=pd.DataFrame(aspects, columns=["aspect", "sentiment", "mentions"]),
        ratings=ratings,
        quotes=_alternate(quotes, 8),
        subject=subject,
        note=note,
    )


_QUOTED = re.compile(r'^review (\S+): """(.*)"""$', re.DOTALL)


def _quote(text: str) -> str:
    """`review R1: \"\"\"text\"\"\"` (the search tool's quoting) as “text” (review R1); other text as is, in quotes."""
    m = _QUOTED.match(text.strip())
    if m:
        return f"“{m.group(2).strip()}” (review {m.group(1)})"
    return f"“{text.strip()}”"


def _alternate(quotes: list[tuple[str, str]], n: int) -> list[str]:
    """Up to n quotes taking sentiments in turn, so praise and complaints both show."""
    by_kind: dict[str, list[str]] = {}
    for kind, q in quotes:
        by_kind.setdefault(kind, []).append(q)
    out: list[str] = []
    while len(out) < n and any(by_kind.values()):
        for items in by_kind.values():
            if items and len(out) < n:
                out.append(items.pop(0))
    return out


@dataclass
class JourneyView:
    table: pd.DataFrame  # columns: time, stage, what, sentiment, intent (the result's own rows)
    summary: str  # Markdown: who, how many steps, furthest stage, the transitions


JOURNEY_COLUMNS = ["time", "stage", "what", "sentiment", "intent", "mentions"]


def journey_view(result: Any) -> JourneyView:
    """A CustomerJourney as the timeline table and a summary with its stage transitions."""
    rows = [step.row("en", result.currency) for step in result.steps]
    cid = result.customer_id
    who = ", ".join(x for x in (result.name, result.email) if x)
    head = f"**Journey of {cid}**" + (f" ({who})" if who else "")
    if not result.steps_total:
        return JourneyView(pd.DataFrame(columns=JOURNEY_COLUMNS),
                           f"{head}: no events, orders, reviews or support messages yet.")
    lines = [f"{head}: {result.steps_total} steps, {result.first_at:%Y-%m-%d} to {result.last_at:%Y-%m-%d}."]
    if result.left_out:
        lines[0] += f" The latest {len(result.steps)} are shown ({result.left_out} earlier left out)."
    stage = result.furthest_stage or "none"
    lines.append(f"Furthest funnel stage: **{stage}**" + ("; has returned an order" if result.returned else "")
                 + f". Last step: {result.last_stage}.")
    lines += [f"- {t.from_stage} → {t.to_stage}: {t.days:.1f} days ({t.from_at:%Y-%m-%d} → {t.to_at:%Y-%m-%d})"
              for t in result.transitions]
    lines += [f"_Note: {n}_" for n in result.notes]
    return JourneyView(pd.DataFrame(rows, columns=JOURNEY_COLUMNS), "\n".join(lines))


@dataclass
class FunnelView:
    chart: pd.DataFrame  # columns: stage, customers (in FUNNEL_ORDER)
    table: pd.DataFrame  # one row per stage: conversion, drop-off and its sentiment, as the result words them
    note: str


def funnel_view(result: Any) -> FunnelView:
    """A JourneyFunnel as bar heights per stage, its table and a one-paragraph note."""
    chart = pd.DataFrame({"stage": [r.stage for r in result.rows], "customers": [r.customers for r in result.rows]})
    table = pd.DataFrame([{
        "stage": r.stage, "customers": r.customers,
        "from previous": "" if r.from_previous is None else f"{100 * r.from_previous:.0f}%",
        "from top": "" if r.from_top is None else f"{100 * r.from_top:.0f}%",
        "dropped off": "" if r.dropped is None else r.dropped,
        "sentiment at drop-off": r.sentiment_text("en"),
        "texts read": "" if r.dropped is None else r.texts,
    } for r in result.rows])
    start, end = result.shown_range()
    scope = ", ".join(x for x in (result.segment and f"segment {result.segment}",
                                  result.tier and f"{result.tier} value tier",
                                  result.category and f"category {result.category}") if x)
    note = (f"Funnel {start} to {end}" if start else "Funnel: no events in this range") + (f" ({scope})" if scope
                                                                                           else "") + "."
    note += "".join(f" {n}" for n in result.notes)
    return FunnelView(chart=chart, table=table, note=note)


def write_csv(table: pd.DataFrame, folder: Path, name: str = "churn.csv") -> Path:
    """The table as a CSV file for the download button (one folder per browser session)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    table.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return path


def session_folder() -> Path:
    """A new temporary folder for one UI session's files."""
    return Path(tempfile.mkdtemp(prefix="shopdesk-ui-"))
