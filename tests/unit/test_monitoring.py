"""The shipped alerts and dashboard (deploy/monitoring/): every metric they name is one
the operator exports, every alert expression parses, and every alert fires on the
series it is about (and not on healthy ones), checked by Prometheus' own promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from servingopt.metrics.exported import OperatorMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy/monitoring"
METRIC = re.compile(r"\bservingopt_[a-z_]+\b")
KEY = ("team-a", "resnet50")


def exported_names() -> set[str]:
    """Metric names in the operator's exposition, every per-ModelServing metric set."""
    metrics = OperatorMetrics()
    for metric in metrics.per_modelserving():
        child = metric.labels(*KEY, "Applied") if metric is metrics.decisions else None
        child = child or metric.labels(*KEY)
        if hasattr(child, "set"):
            child.set(1)
        elif hasattr(child, "inc"):
            child.inc()
        else:
            child.observe(0.1)
    text = generate_latest(metrics.registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def rules() -> dict[str, Any]:
    doc = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert doc["kind"] == "PrometheusRule"
    return dict(doc["spec"])


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if isinstance(variable.get("query"), dict):
            exprs.append(variable["query"]["query"])
    return exprs


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: `make system-deps` installs Prometheus with it")
    return found


def test_every_metric_the_alerts_and_dashboard_name_is_exported() -> None:
    exported = exported_names()
    exprs = [r["expr"] for g in rules()["groups"] for r in g["rules"]] + dashboard_exprs()
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert named, "no servingopt metric named at all"
    assert named - exported == set(), f"not exported: {sorted(named - exported)}"
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("cost", "savings", "p99", "replicas", "decisions", "rollbacks"):
        assert topic in titles


def test_the_alert_rules_parse(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules()))
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = {r["alert"] for g in rules()["groups"] for r in g["rules"]}
    assert names == {
        "ServingoptSLOBreached",
        "ServingoptRolledBack",
        "ServingoptMetricsUnavailable",
        "ServingoptBudgetRefused",
        "ServingoptReconcileErrors",
    }


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    pairs = {"namespace": KEY[0], "modelserving": KEY[1], **labels}
    inner = ", ".join(f'{k}="{v}"' for k, v in pairs.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def render(template: str, labels: dict[str, str], value: float) -> str:
    """The alert templates' two forms: ``{{ $labels.x }}`` and ``{{ $value | printf }}``."""
    out = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    out = re.sub(r'\{\{ \$value \| printf "([^"]+)" \}\}', lambda m: m.group(1) % value, out)
    assert "{{" not in out, out
    return out


def firing(alert: str, at: str, value: float = 1.0, **labels: str) -> dict[str, Any]:
    """The alert expected at ``at`` with its labels and rendered annotations."""
    rule = next(r for g in rules()["groups"] for r in g["rules"] if r["alert"] == alert)
    expected = {"namespace": KEY[0], "modelserving": KEY[1], **labels, **rule["labels"]}
    annotations = {k: render(v, expected, value) for k, v in rule["annotations"].items()}
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": expected, "exp_annotations": annotations}],
    }


def quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def test_each_alert_fires_on_its_series_and_not_on_healthy_ones(tmp_path: Path) -> None:
    """promtool's rule unit tests: one minute between samples, 40 minutes of each."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules()))
    broken = [
        series("servingopt_slo_attainment_ratio", "0.8x40"),
        series("servingopt_rollbacks_total", "0 0 0 1x37"),
        series("servingopt_metrics_available", "0x40"),
        series("servingopt_decisions_total", "0 0 0 1x37", outcome="Refused"),
        series("servingopt_reconcile_errors_total", "0+1x40"),
    ]
    healthy = [
        series("servingopt_slo_attainment_ratio", "1x40"),
        series("servingopt_rollbacks_total", "0x40"),
        series("servingopt_metrics_available", "1x40"),
        series("servingopt_decisions_total", "0+1x40", outcome="Applied"),
        series("servingopt_reconcile_errors_total", "0x40"),
    ]
    alerts = sorted(r["alert"] for g in rules()["groups"] for r in g["rules"])
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": broken,
                "alert_rule_test": [
                    firing("ServingoptSLOBreached", "15m", value=0.8),
                    firing("ServingoptRolledBack", "10m"),
                    firing("ServingoptMetricsUnavailable", "20m"),
                    firing("ServingoptBudgetRefused", "10m", outcome="Refused"),
                    firing("ServingoptReconcileErrors", "35m"),
                    quiet("ServingoptSLOBreached", "5m"),  # not before its `for`
                    quiet("ServingoptMetricsUnavailable", "10m"),
                ],
            },
            {
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [quiet(alert, "35m") for alert in alerts],
            },
        ],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
