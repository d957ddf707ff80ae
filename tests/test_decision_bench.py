"""The decision-quality benchmark (``make decision-bench``) on a small corpus: fast, same code."""

from __future__ import annotations

import pytest

from tools import decision_bench


def test_curve_decisions_never_violate_the_slo_and_scalars_do() -> None:
    printed, figures = decision_bench.table(decision_bench.run(seed=15, jobs=60))
    assert figures["curve"][0] == 0
    assert figures["oracle"] == (0, 1.0)
    assert figures["scalar"][0] > 0
    assert "cost/oracle" in printed


def test_the_corpus_is_seeded() -> None:
    assert decision_bench.corpus(3, 5) == decision_bench.corpus(3, 5)
    assert decision_bench.corpus(3, 5) != decision_bench.corpus(4, 5)


def test_main_fails_past_the_targets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(decision_bench, "TARGET_COST_RATIO", 1.0)
    assert decision_bench.main(["--jobs", "20"]) == 1
    assert "FAIL" in capsys.readouterr().err
