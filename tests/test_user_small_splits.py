"""A "beats" verdict from a handful of splits: 3 wins of 4 (75 %) read "A beats B", though a fair coin gives
that 31 % of the time. The verdict now also needs a one-sided sign test at p <= 0.05 (checked against scipy)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from scipy.stats import binomtest

import geos2vec.evaluate as E


@pytest.mark.parametrize("n", range(1, 26))
def test_sign_test_p_is_scipys_binomial_tail(n):
    for k in range(n + 1):
        assert E.sign_test_p(k, n) == pytest.approx(binomtest(k, n, 0.5, alternative="greater").pvalue, rel=1e-12)


def _reference(wins, losses, n, one):
    def beats(k):
        return n > 0 and k >= math.ceil(0.75 * n) and binomtest(k, n, alternative="greater").pvalue <= 0.05

    if one:
        need = math.ceil(0.75 * n)
        side = "A" if n and wins >= need else ("B" if n and losses >= need else None)
        return "no clear winner" if side is None else f"{side} ahead on one test set"
    side = "A" if beats(wins) else ("B" if beats(losses) else None)
    return "no clear winner" if side is None else f"{side} beats {'B' if side == 'A' else 'A'}"


def test_verdict_on_every_count_up_to_twenty_splits():
    for n in range(0, 21):
        for wins in range(n + 1):
            for losses in range(n - wins + 1):
                for one in (False, True):
                    row = SimpleNamespace(wins=wins, losses=losses, n_splits=n, one_test_set=one)
                    assert E.verdict(row) == _reference(wins, losses, n, one), (wins, losses, n, one)


@pytest.mark.parametrize("wins, losses, n, expected", [
    (3, 1, 4, "no clear winner"),       # 75 %, but p = 0.31
    (4, 0, 4, "no clear winner"),       # p = 0.0625: four splits can never show it
    (5, 0, 5, "A beats B"),             # p = 0.031
    (0, 5, 5, "B beats A"),
    (15, 5, 20, "A beats B"),           # the 20-split protocol's rule is unchanged: p = 0.021
    (14, 6, 20, "no clear winner"),
    (8, 2, 10, "no clear winner"),      # 80 %, p = 0.055
    (9, 1, 10, "A beats B"),
])
def test_hand_checked_verdicts(wins, losses, n, expected):
    assert E.verdict(SimpleNamespace(wins=wins, losses=losses, n_splits=n, one_test_set=False)) == expected


def test_paired_table_beats_column_follows_the_sign_test():
    import numpy as np
    import pandas as pd

    rows = []
    for n, wins in ((4, 3), (4, 4), (5, 5), (20, 15)):
        for k in range(n):
            a = 0.5 + (0.01 if k < wins else -0.0001)  # small losses: the Holm-adjusted t-test agrees (15/20: p 0.007)
            for method, r2 in (("a", a), ("b", 0.5)):
                rows.append(dict(task=f"t{n}_{wins}", split="random", probe="ridge", method=method, rep=k,
                                 split_id=f"s{k}", r2=r2, mae=1.0, n_cells=100, n_test=20, n_fit=80))
    scores = pd.DataFrame(rows)
    paired = E.paired_table(scores)
    got = paired[paired.method_a == "a"].set_index("task").beats
    assert dict(got) == {"t4_3": False, "t4_4": False, "t5_5": True, "t20_15": True}
    assert np.all(paired[paired.method_a == "a"].wins.to_numpy() == [3, 4, 5, 15])


def test_verdict_reads_rows_of_an_older_or_float_typed_paired_csv():
    """A paired.csv without ``one_test_set`` (before 0.3) raised AttributeError; float counts raised TypeError."""
    assert E.verdict(SimpleNamespace(wins=15.0, losses=5.0, n_splits=20.0, one_test_set=False)) == "A beats B"
    assert E.verdict(SimpleNamespace(wins=16, losses=4, n_splits=20)) == "A beats B"
    assert E.verdict(SimpleNamespace(wins=3, losses=1, n_splits=4)) == "no clear winner"
