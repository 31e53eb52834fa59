"""``servingopt plan`` end to end on files: samples, history CSV, exit codes, formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from servingopt.cli import EXIT_INVALID_INPUT, main
from servingopt.commands.exits import EXIT_INFEASIBLE
from servingopt.loop.history import HistoryError, parse_history

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "samples" / "modelservings").glob("*.yaml"))
RESNET = ROOT / "samples" / "modelservings" / "resnet50-classifier.yaml"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_gets_a_sensible_decision(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["plan", "-f", str(sample), "--rps", "50", "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == (0 if doc["sloFeasible"] else EXIT_INFEASIBLE)
    assert doc["sloFeasible"], doc["reasons"]  # 50 req/s is within every sample's reach
    spec = yaml.safe_load(sample.read_text())["spec"]
    assert doc["predicted"]["p99LatencyMs"] <= spec["slo"]["latencyP99Ms"]
    floor = spec["slo"].get("minAccuracy")
    accuracy = {v["name"]: v.get("accuracy") for v in spec.get("variants", [])}
    if floor is not None:
        assert accuracy[doc["variant"]] >= floor
    auto = spec.get("autoscaling", {})
    assert auto.get("minReplicas", 1) <= doc["replicas"]["min"] <= doc["replicas"]["max"]
    assert doc["replicas"]["max"] <= auto.get("maxReplicas", 20)


def test_table_output_shows_alternatives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(RESNET), "--rps", "400", "-o", "table"]) == 0
    out = capsys.readouterr().out
    assert "INSTANCE TYPE" in out and "WHY NOT" in out and "reasons:" in out
    assert "chosen" in out


def test_yaml_output_parses_to_the_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plan", "-f", str(RESNET), "--rps", "400", "-o", "yaml"])
    from_yaml = yaml.safe_load(capsys.readouterr().out)
    main(["plan", "-f", str(RESNET), "--rps", "400", "-o", "json"])
    assert from_yaml == json.loads(capsys.readouterr().out)


def test_infeasible_exit_code_still_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "-f", str(RESNET), "--rps", "1000000", "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_INFEASIBLE and not doc["sloFeasible"] and doc["instanceType"]


def test_history_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minutes = np.arange(180)
    rows = ["timestamp,requests_per_second,p99_latency_ms,replicas,instance_type,variant"]
    rows += [
        f"2026-01-01T{m // 60:02d}:{m % 60:02d}:00Z,{300 + 50 * np.sin(m / 20):.1f},9.0,1,"
        "g4dn.xlarge,int8"
        for m in minutes
    ]
    csv = tmp_path / "history.csv"
    csv.write_text("\n".join(rows) + "\n")
    assert main(["plan", "-f", str(RESNET), "--history", str(csv), "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["predicted"]["forecast"] == "holt"
    assert any(c["instanceType"] == "g4dn.xlarge" for c in doc["corrections"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no demand"),
        (["--rps", "-3"], "--rps"),
        (["--cache-hit-rate", "2", "--rps", "1"], "cache-hit-rate"),
        (["--catalog", "/nonexistent.yaml", "--rps", "1"], "nonexistent"),
    ],
)
def test_invalid_input_exit_code(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-f", str(RESNET), *args]) == EXIT_INVALID_INPUT
    assert message in capsys.readouterr().err


def test_invalid_modelserving(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: servingopt.io/v1alpha1\nkind: ModelServing\nspec: {}\n")
    assert main(["plan", "-f", str(bad), "--rps", "1"]) == EXIT_INVALID_INPUT
    assert "slo" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,rps\n1,2\n", "missing timestamp, requests_per_second"),
        ("timestamp,requests_per_second\n", "no data rows"),
        ("timestamp,requests_per_second\nyesterday,3\n", "line 2: timestamp"),
        ("timestamp,requests_per_second\n1,abc\n", "line 2: requests_per_second"),
        ("timestamp,requests_per_second\n1,3\n1,4\n", "distinct"),
    ],
)
def test_history_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        parse_history(text)


def test_history_accepts_unix_seconds_and_blank_optionals() -> None:
    history = parse_history(
        "timestamp,requests_per_second,p99_latency_ms,max_batch_size\n120,5,,8\n60,4,12.5,\n"
    )
    assert list(history.timestamps_s) == [60.0, 120.0]  # sorted
    assert np.isnan(history.p99_latency_ms[1]) and history.p99_latency_ms[0] == 12.5
    assert history.max_batch_size[-1] == 8 and np.isnan(history.max_batch_size[0])
