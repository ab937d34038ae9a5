"""Turning raw transcripts into training data: redaction, de-duplication, and a customer-disjoint train/dev split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from finetune.redact import redact_all
from finetune.transcripts import Transcript


def fingerprint(t: Transcript) -> str:
    """Same conversation content (whitespace and case folded), same fingerprint; metadata is ignored."""
    parts = []
    for m in t.messages:
        calls = [(tc["function"]["name"], tc["function"]["arguments"]) for tc in m.get("tool_calls") or []]
        parts.append([m["role"], " ".join((m.get("content") or "").lower().split()), calls])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def dedup(transcripts: list[Transcript]) -> tuple[list[Transcript], int]:
    """The transcripts without exact repeats, and how many were removed."""
    seen: set[str] = set()
    out = []
    for t in transcripts:
        fp = fingerprint(t)
        if fp in seen:
            continue
        seen.add(fp)
        out.append(t)
    return out, len(transcripts) - len(out)


def group_key(t: Transcript, index: int) -> str:
    """Conversations of one customer share a group; one without a customer is its own group."""
    if t.customer_id:
        return f"customer:{t.customer_id}"
    return f"conversation:{t.conversation_id or index}"


def split(
    transcripts: list[Transcript], dev_fraction: float, seed: int = 0
) -> tuple[list[Transcript], list[Transcript]]:
    """Split by customer (and by conversation where there is none): no dev customer appears in train.

    A group goes to dev when a seeded hash of its key falls under `dev_fraction`, so the split is stable when
    transcripts are added.
    """
    if not 0 <= dev_fraction < 1:
        raise ValueError("dev_fraction must be in [0, 1)")
    train, dev = [], []
    for i, t in enumerate(transcripts):
        h = hashlib.sha256(f"{seed}:{group_key(t, i)}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2**64
        (dev if u < dev_fraction else train).append(t)
    return train, dev


@dataclass
class PreparedData:
    train: list[Transcript]
    dev: list[Transcript]
    report: dict[str, Any] = field(default_factory=dict)


def prepare(
    transcripts: list[Transcript], *, redact: bool = True, dev_fraction: float = 0.1, seed: int = 0
) -> PreparedData:
    """Redact (by default), deduplicate and split transcripts into training and dev sets."""
    report: dict[str, Any] = {"read": len(transcripts)}
    if redact:
        transcripts, counts = redact_all(transcripts)
        report["redacted"] = counts
    else:
        report["redacted"] = None
    transcripts, dupes = dedup(transcripts)
    report["duplicates_removed"] = dupes
    train, dev = split(transcripts, dev_fraction, seed)
    train_customers = {t.customer_id for t in train if t.customer_id}
    dev_customers = {t.customer_id for t in dev if t.customer_id}
    report.update(
        train=len(train), dev=len(dev), train_customers=len(train_customers), dev_customers=len(dev_customers),
        customers_in_both=len(train_customers & dev_customers),
    )
    return PreparedData(train, dev, report)


def with_dev_file(data: PreparedData, dev: list[Transcript]) -> PreparedData:
    """`data` (prepared with no dev split) measured against a separate dev file: training conversations of the dev
    file's customers are left out, so no dev customer appears in training, and the report counts them.
    """
    dev_customers = {t.customer_id for t in dev if t.customer_id}
    train = [t for t in data.train if not (t.customer_id and t.customer_id in dev_customers)]
    train_customers = {t.customer_id for t in train if t.customer_id}
    report = dict(data.report, dev=len(dev), dev_customers=len(dev_customers),
                  left_out_dev_customer=len(data.train) - len(train), train=len(train),
                  train_customers=len(train_customers), customers_in_both=len(train_customers & dev_customers))
    return PreparedData(train, dev, report)
