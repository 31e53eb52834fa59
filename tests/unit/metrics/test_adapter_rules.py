"""The prometheus-adapter rules `servingopt adapter-config` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from servingopt.metrics import adapter
from servingopt.metrics.promql import PRESETS

ROOT = Path(__file__).resolve().parents[3]


def by_name(config: dict) -> dict[str, dict]:
    return {r["name"]["as"]: r for r in config["rules"]}


def test_defaults_serve_both_kinds_under_the_names_the_hpa_uses() -> None:
    rules = by_name(adapter.adapter_config(adapter.served_metrics([])))
    assert set(rules) == {"requests_per_second", "concurrent_requests"}
    rps = rules["requests_per_second"]
    assert rps["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    for preset in PRESETS.values():  # every preset's request counters are read
        for counter in preset.pod_requests:
            assert counter in rps["seriesQuery"] and counter in rps["metricsQuery"]
    assert "[60s]" in rps["metricsQuery"] and "<<.LabelMatchers>>" in rps["metricsQuery"]
    assert rps["metricsQuery"].startswith("sum by (<<.GroupBy>>) (rate(")


def test_concurrency_converts_microseconds_of_triton() -> None:
    config = adapter.adapter_config(adapter.served_metrics([]), ["triton"])
    query = by_name(config)["concurrent_requests"]["metricsQuery"]
    assert query == (
        'sum by (<<.GroupBy>>) (rate({__name__=~"nv_inference_request_duration_us",'
        "<<.LabelMatchers>>}[60s])) * 1e-06"
    )


def test_one_preset_reads_only_its_own_counters() -> None:
    config = adapter.adapter_config(adapter.served_metrics([]), ["generic"], window_seconds=30)
    rps = by_name(config)["requests_per_second"]
    assert rps["seriesQuery"] == '{__name__=~"serving_requests_total",namespace!="",pod!=""}'
    assert "nv_inference" not in rps["metricsQuery"] and "[30s]" in rps["metricsQuery"]


def test_modelservings_add_their_metric_names() -> None:
    served = adapter.served_metrics([("inflight", "Concurrency"), ("cpu", "CPUUtilization")])
    assert [(m.name, m.kind) for m in served] == [
        ("concurrent_requests", "Concurrency"),
        ("inflight", "Concurrency"),
        ("requests_per_second", "RequestsPerSecond"),
    ]


def test_a_name_asked_for_as_two_kinds_is_refused() -> None:
    with pytest.raises(adapter.ConflictingMetric, match="'x' is asked for as both"):
        adapter.served_metrics([("x", "Concurrency"), ("x", "RequestsPerSecond")])


def test_relabelled_namespace_and_pod_labels() -> None:
    config = adapter.adapter_config(
        adapter.served_metrics([]), namespace_label="kubernetes_namespace", pod_label="pod_name"
    )
    rule = by_name(config)["requests_per_second"]
    assert set(rule["resources"]["overrides"]) == {"kubernetes_namespace", "pod_name"}
    assert 'kubernetes_namespace!=""' in rule["seriesQuery"]
    with pytest.raises(ValueError, match="invalid Prometheus label name"):
        adapter.adapter_config(adapter.served_metrics([]), pod_label='pod"}')


def test_an_unknown_preset_is_named() -> None:
    with pytest.raises(ValueError, match="unknown metrics preset 'tgi'"):
        adapter.adapter_config(adapter.served_metrics([]), ["tgi"])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from servingopt.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "adapter-config", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_command_serves_the_samples_metric_names() -> None:
    proc = cli("-f", "samples/modelservings/support-llm.yaml", "--preset", "vllm")
    assert proc.returncode == 0, proc.stderr
    rules = by_name(yaml.safe_load(proc.stdout))
    assert rules["vllm_num_requests_running"]["metricsQuery"] == (
        'sum by (<<.GroupBy>>) (rate({__name__=~"vllm:e2e_request_latency_seconds_sum",'
        "<<.LabelMatchers>>}[60s]))"
    )


def test_the_command_names_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "ms.yaml"
    bad.write_text("apiVersion: servingopt.io/v1alpha1\nkind: ModelServing\nmetadata: {name: x}\n")
    proc = cli("-f", str(bad))
    assert proc.returncode == 2
    assert "ModelServing/x" in proc.stderr and "spec" in proc.stderr
    assert cli("--preset", "nope").returncode == 2


def test_the_shipped_rules_are_what_the_command_prints() -> None:
    shipped = yaml.safe_load((ROOT / "deploy/adapter/config.yaml").read_text())
    proc = cli()
    assert proc.returncode == 0, proc.stderr
    assert shipped == yaml.safe_load(proc.stdout), "regenerate: servingopt adapter-config"
