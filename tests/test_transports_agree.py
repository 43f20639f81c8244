"""The fast transport agrees with the reference (aiobotocore) on everything it counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.scenario import scenario_from_dict
from loadgen.summary import RunSummary

ACCESS_KEY, SECRET_KEY = "AKIDAGREE", "agree-secret"


def mock_scenario(transport: str) -> dict:
    return {
        "name": f"agree-{transport}",
        "endpoint_url": "mock",
        "transport": transport,
        "endpoints": [{"name": "ep"}, {"name": "ab"}],
        "request": {"body": '{"x": 1}', "custom_attributes": "trace={trace_id}"},
        "correlation": "contains",
        "load": {
            "executor": "constant-concurrency",
            "concurrency": 8,
            "requests": 400,
            "timeout": "5s",
        },
        "mock": {
            "latency_ms": {"median": 1, "p99": 5},
            "errors": {"ModelError": 0.08, "ThrottlingException": 0.05, "ServiceUnavailable": 0.03},
            "variants": [{"name": "blue", "weight": 3}, {"name": "green", "weight": 1}],
            "echo": "Trace ID: {custom_attributes}",
            "seed": 11,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
        },
    }


def counts(summary: RunSummary) -> dict[str, Any]:
    """Everything counted, without timings."""
    result: dict[str, Any] = {}
    for label, stats in summary.endpoints.items():
        correlation = stats.correlation.model_dump(exclude={"samples"})
        result[label] = (stats.requests, stats.ok, stats.errors, correlation)
    total = summary.total
    result["total"] = (total.requests, total.ok, total.errors, total.model_error_status)
    variants: dict[str, int] = {}
    for stats in summary.endpoints.values():
        for variant, v in stats.variants.items():
            variants[variant] = variants.get(variant, 0) + v.requests
    result["variants"] = variants
    return result


async def test_fast_and_botocore_count_identically_against_the_signing_mock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    results = {}
    for transport in ("fast", "botocore"):
        run = await run_scenario(
            scenario_from_dict(mock_scenario(transport)), RunOptions(out=tmp_path, quiet=True)
        )
        results[transport] = counts(run.summary)
    fast, botocore = results["fast"], results["botocore"]
    assert fast == botocore
    requests, ok, errors, _ = fast["total"]
    assert requests == 400
    assert "InvalidSignatureException" not in errors  # both signed correctly
    assert set(errors) == {"ModelError", "ThrottlingException", "ServiceUnavailable"}
    assert ok == 400 - sum(errors.values())
    assert fast["ep"][3]["matched"] + fast["ab"][3]["matched"] == ok
    assert set(fast["variants"]) == {"blue", "green"}
