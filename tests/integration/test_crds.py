"""The generated CRDs on a real API server: samples are accepted, invalid objects are
rejected with the schema/CEL message, printer columns and `kubectl explain` work."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from servingopt.devcluster import Kubectl, KubectlError

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
SAMPLES = ROOT / "samples"
INVALID_FIXTURES = ROOT / "tests" / "fixtures" / "invalid"
BASE_SAMPLE = SAMPLES / "modelservings" / "distilbert-sentiment.yaml"

Doc = dict[str, Any]


@pytest.fixture(scope="session")
def crds(admin_kubectl: Kubectl) -> list[Doc]:
    """Installs crds/ (kubectl apply -f crds/) and waits until they are served."""
    admin_kubectl.run("apply", "-f", str(CRDS))
    docs = [d for f in sorted(CRDS.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    names = [f"crd/{d['metadata']['name']}" for d in docs if d]
    admin_kubectl.run("wait", "--for=condition=Established", "--timeout=30s", *names)
    return [d for d in docs if d]


def _crd(crds: list[Doc], kind: str) -> Doc:
    return next(d for d in crds if d["spec"]["names"]["kind"] == kind)


def _base() -> Doc:
    doc: Doc = yaml.safe_load(BASE_SAMPLE.read_text())
    return doc


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation setting a dotted path (list indexes as numbers); None deletes it."""
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]

    def mutate(doc: Doc) -> None:
        node: Any = doc
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


# mutation of the valid sample -> (field the server blames, its schema/CEL message)
INVALID: dict[str, tuple[Callable[[Doc], None], str, str]] = {
    "mode-enum": (_set("spec.mode", "Sometimes"), "spec.mode", 'Unsupported value: "Sometimes"'),
    "slo-required": (_set("spec.slo", None), "spec.slo", "Required value"),
    "slo-zero": (
        _set("spec.slo.latencyP99Ms", 0),
        "spec.slo.latencyP99Ms",
        "spec.slo.latencyP99Ms in body should be greater than 0",
    ),
    "accuracy-above-1": (
        _set("spec.slo.minAccuracy", 1.5),
        "spec.slo.minAccuracy",
        "spec.slo.minAccuracy in body should be less than or equal to 1",
    ),
    "target-kind": (
        _set("spec.targetRef.kind", "StatefulSet"),
        "spec.targetRef.kind",
        'Unsupported value: "StatefulSet"',
    ),
    "variants-empty": (
        _set("spec.variants", []),
        "spec.variants",
        "spec.variants in body should have at least 1 items",
    ),
    "variant-name-pattern": (
        _set("spec.variants.0.name", "FP32"),
        "spec.variants[0].name",
        "spec.variants[0].name in body should match",
    ),
    "points-unsorted": (
        _set("spec.variants.0.profiles.0.points.0.batchSize", 16),
        "spec.variants[0].profiles[0].points",
        "points must be ordered by increasing batchSize",
    ),
    "batch-min-above-max": (
        _set("spec.batching.maxBatchSize", {"min": 16, "max": 8}),
        "spec.batching.maxBatchSize",
        "min must be less than or equal to max",
    ),
    "batch-min-zero": (
        _set("spec.batching.maxBatchSize.min", 0),
        "spec.batching.maxBatchSize",
        "maxBatchSize.min must be at least 1",
    ),
    "replicas-min-above-max": (
        _set("spec.autoscaling.minReplicas", 50),
        "spec.autoscaling.minReplicas",
        "minReplicas must be less than or equal to maxReplicas",
    ),
    "label-matcher-key": (
        _set("spec.metrics.labelMatchers", {"model-name": "x"}),
        "spec.metrics.labelMatchers",
        "labelMatchers keys must be Prometheus label names",
    ),
    "no-variant-reaches-accuracy": (
        _set("spec.slo.minAccuracy", 0.95),
        "spec.variants",
        "no variant reaches slo.minAccuracy",
    ),
    "capacity-type-enum": (
        _set("spec.candidates.capacityTypes", ["reserved"]),
        "spec.candidates.capacityTypes[0]",
        'Unsupported value: "reserved"',
    ),
    "prometheus-url-pattern": (
        _set("spec.metrics.prometheusUrl", "prometheus:9090"),
        "spec.metrics.prometheusUrl",
        "spec.metrics.prometheusUrl in body should match",
    ),
    "autoscaling-metric-enum": (
        _set("spec.autoscaling.metric", "Memory"),
        "spec.autoscaling.metric",
        'Unsupported value: "Memory"',
    ),
}


def _server_dry_run(kubectl: Kubectl, doc: Doc) -> str:
    """Creates `doc` with --dry-run=server; returns kubectl's stderr ("" when accepted)."""
    try:
        kubectl.run("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc))
    except KubectlError as e:
        return e.stderr
    return ""


def test_crds_are_established_with_short_name_and_status_subresource(
    crds: list[Doc], admin_kubectl: Kubectl
) -> None:
    served = admin_kubectl.json("get", "crd", "modelservings.servingopt.io")
    assert "ms" in served["spec"]["names"]["shortNames"]
    version = served["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert "status" in version["subresources"]
    kinds = {d["spec"]["names"]["kind"] for d in crds}
    assert kinds == {"ModelServing", "ServingPolicy", "InstanceCatalog", "CapacityMix"}
    mix = admin_kubectl.json("get", "crd", "capacitymixes.servingopt.io")
    scale = mix["spec"]["versions"][0]["subresources"]["scale"]
    assert scale["specReplicasPath"] == ".spec.replicas"


def test_samples_are_accepted(crds: list[Doc], kubectl: Kubectl) -> None:
    cluster_scoped = [
        *sorted((ROOT / "deploy").glob("*/default-*.yaml")),
        *sorted((SAMPLES / "policies").glob("*.yaml")),
        *sorted((SAMPLES / "catalogs").glob("*.yaml")),
    ]
    for path in cluster_scoped:
        kubectl.run("apply", "--dry-run=server", "-f", str(path))
    kubectl.run("apply", "-f", str(SAMPLES / "workloads"))
    kubectl.run("apply", "-f", str(SAMPLES / "modelservings"))
    names = kubectl.run("get", "modelservings", "-o", "name").stdout.split()
    expected = {
        f"modelserving.servingopt.io/{p.stem}" for p in (SAMPLES / "modelservings").glob("*.yaml")
    }
    assert set(names) == expected


@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID.keys())
def test_invalid_modelservings_are_rejected_with_the_schema_message(
    crds: list[Doc], kubectl: Kubectl, case: tuple[Callable[[Doc], None], str, str]
) -> None:
    mutate, field, message = case
    doc = copy.deepcopy(_base())
    assert _server_dry_run(kubectl, doc) == ""  # the unmutated sample is valid
    mutate(doc)
    stderr = _server_dry_run(kubectl, doc)
    assert 'The ModelServing "distilbert-sentiment" is invalid' in stderr
    assert re.search(rf"(^|\* |invalid: ){re.escape(field)}: (Invalid value: )?", stderr, re.M)
    assert message in stderr


def _fixtures() -> list[Path]:
    """tests/fixtures/invalid files marked `# server: reject`."""
    if not INVALID_FIXTURES.is_dir():
        return []
    return [
        p
        for p in sorted(INVALID_FIXTURES.glob("*.yaml"))
        if re.search(r"^# server: reject$", p.read_text(), re.M)
    ]


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.stem)
def test_invalid_fixtures_marked_for_the_server_are_rejected(
    crds: list[Doc], kubectl: Kubectl, path: Path
) -> None:
    text = path.read_text()
    doc = yaml.safe_load(text)
    doc.get("metadata", {}).pop("namespace", None)  # created in the test's namespace
    stderr = _server_dry_run(kubectl, doc)
    assert "is invalid" in stderr, f"{path.name} was accepted"
    # The offline validator's `# expect:` path names the field; the server must blame the
    # same top-level field (its path may stop at the object that carries the CEL rule).
    expect = re.search(r"^# expect: (spec\.\w+)", text, re.M)
    if expect:
        assert expect.group(1) in stderr


def test_get_ms_shows_the_printer_columns(crds: list[Doc], kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(BASE_SAMPLE))
    version = _crd(crds, "ModelServing")["spec"]["versions"][0]
    columns = version["additionalPrinterColumns"]
    header = kubectl.run("get", "ms").stdout.splitlines()[0].split()
    assert header[0] == "NAME"
    assert header[1:] == [c["name"].upper() for c in columns if not c.get("priority")]
    wide = kubectl.run("get", "ms", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[1:] == [c["name"].upper() for c in columns]
    row = kubectl.run("get", "ms", "distilbert-sentiment").stdout.splitlines()[1].split()
    assert row[0] == "distilbert-sentiment" and "Auto" not in row  # no status yet
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "lastTransitionTime": "2026-12-01T00:00:00Z",
    }
    status = {"status": {"mode": "Auto", "conditions": [ready]}}
    kubectl.run(
        "patch", "ms", "distilbert-sentiment", "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip
    row = kubectl.run("get", "ms", "distilbert-sentiment").stdout.splitlines()[1].split()
    assert row[:3] == ["distilbert-sentiment", "True", "Auto"]  # READY, MODE from status


def test_explain_prints_the_field_docs(crds: list[Doc], admin_kubectl: Kubectl) -> None:
    schema = _crd(crds, "ModelServing")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    slo = schema["properties"]["spec"]["properties"]["slo"]
    out = admin_kubectl.run("explain", "modelserving.spec.slo").stdout
    assert "KIND:       ModelServing" in out
    assert "VERSION:    v1alpha1" in out
    for field, prop in slo["properties"].items():
        assert field in out
        first_words = " ".join(prop["description"].split()[:4])
        assert first_words in " ".join(out.split())
    assert re.search(r"latencyP99Ms\s+<number> -required-", out)
