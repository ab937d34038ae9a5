"""RFM quintile scores and the documented segment grid."""

import pandas as pd
import pytest

from tools.analytics.rfm import SEGMENTS, normalise_segment, quintile_score, score_rfm, segment_name


def test_quintiles_by_share_of_customers_strictly_worse():
    s = pd.Series(range(10), index=[f"c{i}" for i in range(10)], dtype=float)
    assert quintile_score(s).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_score(s, higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_ties_share_one_score():
    # Six one-order customers tie; they all get F = 1 whatever their row order.
    s = pd.Series([1, 1, 1, 1, 1, 1, 2, 3, 5, 9], dtype=float)
    scores = quintile_score(s).tolist()
    assert scores[:6] == [1] * 6
    assert scores[6:] == [4, 4, 5, 5]
    shuffled = s.sample(frac=1, random_state=3)
    assert quintile_score(shuffled).sort_index().tolist() == scores


@pytest.mark.parametrize(
    "r,f,name",
    [(5, 5, "Champions"), (5, 4, "Champions"), (4, 5, "Loyal"), (3, 4, "Loyal"), (5, 1, "New"), (4, 1, "Promising"),
     (5, 2, "Potential loyalists"), (4, 3, "Potential loyalists"), (3, 1, "Need attention"), (3, 3, "Need attention"),
     (2, 3, "At risk"), (1, 4, "At risk"), (1, 5, "Can't lose them"), (2, 5, "Can't lose them"),
     (2, 1, "Hibernating"), (2, 2, "Hibernating"), (1, 1, "Lost"), (1, 2, "Lost")],
)
def test_segment_grid(r, f, name):
    assert segment_name(r, f) == name


def test_every_cell_has_a_named_segment_and_every_name_is_used():
    names = {segment_name(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == set(SEGMENTS)


def test_score_rfm_on_a_feature_table():
    feats = pd.DataFrame(
        {
            "recency_days": [1, 400, 5, 300, 30],
            "frequency": [9, 12, 1, 1, 3],
            "monetary_total": [900, 700, 20, 10, 150],
        },
        index=["champ", "cantlose", "once", "lost", "mid"],
    )
    out = score_rfm(feats)
    assert out.loc["champ", "rfm"] == "545"
    assert out.loc["champ", "segment"] == "Champions"
    assert out.loc["cantlose", "segment"] == "Can't lose them"
    assert out.loc["once", "rfm"] == "412" and out.loc["once", "segment"] == "Promising"
    assert out.loc["lost", "rfm"] == "211" and out.loc["lost", "segment"] == "Hibernating"


@pytest.mark.parametrize("text,name", [("at-risk", "At risk"), ("CANT LOSE THEM", "Can't lose them"),
                                       ("loyal customers", "Loyal"), ("champions", "Champions"), ("vip", None)])
def test_normalise_segment(text, name):
    assert normalise_segment(text) == name
