"""The decision-quality benchmark (``make decision-bench``) on a small corpus: fast, same code."""

from __future__ import annotations

from typing import Any

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


def test_component_decisions_never_violate_the_slo() -> None:
    printed, figures = decision_bench.table(decision_bench.ai_run(seed=15, jobs=200))
    assert figures["component"][0] == 0
    assert figures["oracle"] == (0, 1.0)
    assert "noisy 5%" in printed


def test_the_ai_corpus_is_seeded_and_its_jobs_are_described_as_botocore_returns_them() -> None:
    assert decision_bench.ai_corpus(3, 5) == decision_bench.ai_corpus(3, 5)
    assert decision_bench.ai_corpus(3, 5) != decision_bench.ai_corpus(4, 5)
    import random

    import botocore.session
    from botocore.validate import validate_parameters

    job = decision_bench.ai_corpus(3, 1)[0]
    described = decision_bench.ai_description(job, random.Random(1), 0.05)
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .shape_for("AIRecommendationList")
    )
    validate_parameters({"Recommendations": described["Recommendations"]}, _holding(shape))


def _holding(shape: Any) -> Any:
    """A structure shape with one member, ``Recommendations``, of ``shape``."""
    from botocore.model import StructureShape

    return StructureShape(
        "Holder",
        {"type": "structure", "members": {"Recommendations": {"shape": shape.name}}},
        shape._shape_resolver,
    )


def test_main_fails_on_a_component_violation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(decision_bench, "AI_NOISE", 0.0)
    real = decision_bench.ai_description

    def optimistic(job: Any, rng: Any, noise: float) -> dict[str, Any]:
        described = real(job, rng, noise)
        for recommendation in described["Recommendations"]:
            for metric in recommendation["ExpectedPerformance"]:
                if metric["Metric"] == "time_to_first_token":
                    metric["Value"] = str(float(metric["Value"]) / 2)
        return described

    monkeypatch.setattr(decision_bench, "ai_description", optimistic)
    assert decision_bench.main(["--jobs", "40"]) == 1
    assert "FAIL: component decision has" in capsys.readouterr().err
