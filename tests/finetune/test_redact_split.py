"""PII redaction (on by default before training), de-duplication, and the customer-disjoint train/dev split."""

from __future__ import annotations

from finetune.prepare import dedup, prepare, split
from finetune.redact import Redactor, luhn_ok, redact_transcript
from finetune.transcripts import Transcript


def _t(customer, text, conv=None, args=None):
    messages = [{"role": "user", "content": text}]
    if args is not None:
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "modify_pending_order_address", "arguments": args}}]})
        messages.append({"role": "tool", "tool_call_id": "c", "content": "ok"})
    messages.append({"role": "assistant", "content": "Done."})
    return Transcript(messages=messages, meta={"customer_id": customer, "conversation_id": conv})


def test_redacts_each_kind_and_keeps_shop_ids():
    r = Redactor()
    text = ("Mail me at ann.lee+shop@example.co.uk or call (415) 555-0134, +44 20 7946 0958 or 13812345678; "
            "card 4111 1111 1111 1111; I live at 445 Maple Drive, Suite 394. 我住在南京西路1266号。 "
            "Order #W2611340, item 6469567736, tracking 357962501027, credit_card_7815826.")
    out = r.text(text)
    for secret in ("ann.lee", "555-0134", "7946 0958", "13812345678", "4111 1111", "445 Maple Drive", "南京西路1266号"):
        assert secret not in out
    for kept in ("#W2611340", "6469567736", "357962501027", "credit_card_7815826"):
        assert kept in out
    assert r.counts == {"EMAIL": 1, "PHONE": 3, "CARD": 1, "ADDRESS": 2}


def test_card_numbers_need_luhn():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert "4111 1111 1111 1112" in Redactor().text("card 4111 1111 1111 1112")


def test_same_value_same_placeholder_in_text_and_arguments():
    t = _t("c1", "Ship it to 18 Harbor View Road, Apt 5B please, email bob@example.com",
           args={"order_id": "#W1", "address1": "18 Harbor View Road", "address2": "Apt 5B", "zip": "98101"})
    red, counts = redact_transcript(t)
    user = red.messages[0]["content"]
    args = red.messages[1]["tool_calls"][0]["function"]["arguments"]
    assert "<ADDRESS_1>" in user and args["address1"] == "<ADDRESS_1>"
    assert args["order_id"] == "#W1" and args["zip"] == "98101" and args["address2"] == "Apt 5B"
    assert "<EMAIL_1>" in user and counts["ADDRESS"] == 2
    assert t.messages[0]["content"].startswith("Ship it to 18 Harbor")  # the original is untouched


def test_dedup_ignores_case_whitespace_and_meta():
    a = _t("c1", "Where is my order?")
    b = _t("c2", "where  is my ORDER?")
    c = _t("c3", "Where is my parcel?")
    kept, removed = dedup([a, b, c])
    assert removed == 1 and kept == [a, c]


def test_split_is_customer_disjoint_and_stable():
    ts = [_t(f"cust{i % 40}", f"question {i}", conv=f"conv{i}") for i in range(400)]
    ts += [_t(None, f"marketer question {i}", conv=f"m{i}") for i in range(50)]
    train, dev = split(ts, 0.2, seed=3)
    train_c = {t.customer_id for t in train if t.customer_id}
    dev_c = {t.customer_id for t in dev if t.customer_id}
    assert dev_c and train_c and not (train_c & dev_c)
    assert 0.05 < len(dev) / len(ts) < 0.45
    assert any(t.customer_id is None for t in dev) and any(t.customer_id is None for t in train)
    again_train, again_dev = split(ts, 0.2, seed=3)
    assert [id(t) for t in again_dev] == [id(t) for t in dev]


def test_prepare_reports_counts():
    ts = [_t("c1", "mail x@y.com"), _t("c1", "mail x@y.com"), _t("c2", "hello")]
    data = prepare(ts, dev_fraction=0.0)
    assert data.report["redacted"]["EMAIL"] == 2  # counted before de-duplication
    assert data.report["duplicates_removed"] == 1 and data.report["train"] == 2
    assert prepare(ts, redact=False, dev_fraction=0.0).report["redacted"] is None


def test_a_dev_file_keeps_its_customers_out_of_training():
    from finetune.prepare import with_dev_file

    data = prepare([_t("c1", "a"), _t("c2", "b"), _t("c1", "c"), _t(None, "d")], redact=False, dev_fraction=0.0)
    out = with_dev_file(data, [_t("c1", "held out"), _t(None, "marketer")])
    assert [m.messages[0]["content"] for m in out.train] == ["b", "d"]
    assert out.report["left_out_dev_customer"] == 2 and out.report["customers_in_both"] == 0
    assert out.report["dev"] == 2 and out.report["dev_customers"] == 1 and out.report["train"] == 2
