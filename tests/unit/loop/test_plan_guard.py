"""``servingopt plan --history``: what the operator would do now, from the history's last
rows (what runs, since when, a rollout in flight), by the same loop step."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from servingopt.cli import EXIT_INVALID_INPUT, main
from servingopt.loop.history import HistoryError, parse_history

ROOT = Path(__file__).resolve().parents[3]
RESNET = ROOT / "samples" / "modelservings" / "resnet50-classifier.yaml"
SUPPORT = ROOT / "samples" / "modelservings" / "support-llm.yaml"
HEADER = (
    "timestamp,requests_per_second,p99_latency_ms,replicas,instance_type,variant,"
    "max_batch_size,capacity_type,max_queue_delay_us,rolling"
)
V100 = ("p3.2xlarge", "fp32", 1, "on-demand", 0, 3)
T4 = ("g4dn.xlarge", "int8", 32, "on-demand", 0, 1)
# Keys of the `servingopt plan -o json` contract (ARCHITECTURE.md): they stay.
CONTRACT = {
    "sloFeasible",
    "instanceType",
    "pool",
    "capacityType",
    "variant",
    "replicas",
    "autoscaling",
    "batching",
    "cache",
    "predicted",
    "reasons",
    "alternatives",
}


def history(tmp_path: Path, ran: Any, minutes: int = 180) -> Path:
    """Three hours at about 300 req/s; ``ran(minute)`` gives (config..., rolling)."""
    rows = [HEADER]
    for m in range(minutes):
        itype, variant, batch, capacity, delay, replicas, *rolling = ran(m)
        stamp = f"2026-01-01T{m // 60:02d}:{m % 60:02d}:00Z"
        rps = 300 + 50 * math.sin(m / 20)
        rows.append(
            f"{stamp},{rps:.1f},9.0,{replicas},{itype},{variant},{batch},{capacity},{delay},"
            f"{rolling[0] if rolling else ''}"
        )
    path = tmp_path / "history.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def plan(capsys: pytest.CaptureFixture[str], *args: str, file: Path = RESNET) -> dict[str, Any]:
    assert main(["plan", "-f", str(file), *args, "-o", "json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_the_json_keeps_its_contract_and_adds_the_guard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = plan(capsys, "--history", str(history(tmp_path, lambda m: V100)))
    assert set(doc) >= CONTRACT
    guard = doc["guard"]
    assert set(guard) >= {"outcome", "reason", "message", "now", "running", "target"}
    assert guard["now"] == "2026-01-01T02:59:00Z"  # the last row's time by default
    assert guard["running"]["instanceType"] == "p3.2xlarge"
    assert guard["currentHourlyCost"] == pytest.approx(3 * 3.06)  # 3 V100 replicas
    # Far dearer than the plan, never changed by servingopt: the operator applies.
    assert (guard["outcome"], guard["reason"]) == ("Applied", "Saving")
    assert guard["target"]["instanceType"] == doc["instanceType"]


def test_too_soon_since_the_last_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # T4 until five minutes ago, then the V100: the change is 5 minutes old.
    csv = history(tmp_path, lambda m: T4 if m < 175 else V100)
    guard = plan(capsys, "--history", str(csv))["guard"]
    assert (guard["outcome"], guard["reason"]) == ("Held", "MinInterval")
    assert guard["runningSince"] == "2026-01-01T02:55:00Z"
    assert "next change after 2026-01-01T03:10:00Z" in guard["message"]
    later = plan(capsys, "--history", str(csv), "--now", "2026-01-01T03:10:00Z")["guard"]
    assert (later["outcome"], later["reason"]) == ("Applied", "Saving")


def test_a_rollout_in_flight(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = history(tmp_path, lambda m: (*V100, "true" if m == 179 else "false"))
    guard = plan(capsys, "--history", str(csv))["guard"]
    assert (guard["outcome"], guard["reason"]) == ("Held", "RolloutInProgress")
    assert guard["rolloutInFlight"] is True


def test_a_saving_below_the_threshold_and_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The plan's placement with other batching: nothing to save, so nothing changes.
    other = history(tmp_path, lambda m: ("g4dn.xlarge", "int8", 2, "on-demand", 500, 1))
    doc = plan(capsys, "--history", str(other))
    assert doc["instanceType"] == "g4dn.xlarge" and doc["batching"]["maxBatchSize"] != 2
    guard = doc["guard"]
    assert (guard["outcome"], guard["reason"]) == ("Held", "SavingBelowThreshold")
    # Running exactly what the plan proposes (the HPA, which a CSV does not record, is
    # taken as proposed): up to date.
    for _ in range(3):  # the plan learns from what ran, so let it settle
        ran = (
            doc["instanceType"],
            doc["variant"],
            doc["batching"]["maxBatchSize"],
            doc["capacityType"],
            round(doc["batching"]["maxQueueDelayMs"] * 1000),
            doc["predicted"]["replicas"],
        )
        doc = plan(capsys, "--history", str(history(tmp_path, lambda m, ran=ran: ran)))
        if doc["guard"]["outcome"] == "Unchanged":
            break
    assert (doc["guard"]["outcome"], doc["guard"]["reason"]) == ("Unchanged", "UpToDate")


def test_mode_recommend_and_rps_alone(capsys: pytest.CaptureFixture[str]) -> None:
    guard = plan(capsys, "--rps", "5", "--now", "1800000000", file=SUPPORT)["guard"]
    assert (guard["outcome"], guard["reason"]) == ("Recommended", "RecommendOnly")
    assert guard["running"] is None and guard["now"] == "2027-01-15T08:00:00Z"


def test_the_table_says_what_the_guard_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = history(tmp_path, lambda m: T4 if m < 175 else V100)
    assert main(["plan", "-f", str(RESNET), "--history", str(csv), "-o", "table"]) == 0
    assert "Held (MinInterval): last change too recent" in capsys.readouterr().out


def test_what_the_history_says_of_its_changes() -> None:
    rows = [HEADER, "0,1,,,a,x,,,,", "60,1,,,b,x,,,,true", "120,1,,,b,x,,,,", "180,1,,,b,x,,,,"]
    assert parse_history("\n".join(rows)).change() == (60.0, 120.0)
    # The row where the change shows is not the new configuration's alone.
    assert parse_history("\n".join(rows[:2] + rows[3:])).change() == (120.0, 180.0)
    # Unknown rows between two configurations belong to the change.
    blank = [HEADER, "0,1,,,a,x,,,,", "60,1,,,,,,,,", "120,1,,,b,x,,,,"]
    assert parse_history("\n".join(blank)).change() == (60.0, 120.0)
    # Never another configuration: never changed.
    assert parse_history("\n".join([HEADER, *rows[2:]])).change() == (None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--now", "tomorrow"], "--now 'tomorrow' is neither ISO-8601 nor unix seconds"),
        (["--now", "nan"], "--now 'nan' is not a time"),
        (["--now", "1"], "no rows at or before --now"),
    ],
)
def test_bad_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    csv = history(tmp_path, lambda m: V100, minutes=5)
    assert main(["plan", "-f", str(RESNET), "--history", str(csv), *args]) == EXIT_INVALID_INPUT
    assert message in capsys.readouterr().err


def test_rolling_must_be_a_flag() -> None:
    with pytest.raises(HistoryError, match="line 2: rolling must be true or false"):
        parse_history("timestamp,requests_per_second,rolling\n1,2,maybe\n")


def test_an_applied_rolling_change_says_what_it_saves_against_its_rollout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = plan(capsys, "--history", str(history(tmp_path, lambda m: V100)))
    guard = doc["guard"]
    assert (guard["outcome"], guard["reason"]) == ("Applied", "Saving")
    rollout = [r for r in doc["reasons"] if r.startswith("rollout: saves $")]
    assert len(rollout) == 1 and "over 1 h against a rollout costing $" in rollout[0]
    assert rollout[0].removeprefix("rollout: ") in guard["message"]


def test_a_change_that_does_not_pay_within_a_short_horizon_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: servingopt.io/v1alpha1\nkind: ServingPolicy\nmetadata: {name: p}\n"
        "spec: {defaultMode: Auto, guardrails: {paybackHorizonSeconds: 1}}\n"
    )
    csv = history(tmp_path, lambda m: V100)
    doc = plan(capsys, "--history", str(csv), "--policy", str(policy))
    guard = doc["guard"]
    assert (guard["outcome"], guard["reason"]) == ("Held", "ChangeDoesNotPay")
    assert "does not pay for its rollout: saves $" in guard["message"]
    assert any(r.startswith("rollout: saves $") for r in doc["reasons"])
    assert guard["target"] is not None
