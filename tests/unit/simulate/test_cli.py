"""``servingopt simulate`` and ``servingopt bench`` end to end on small inputs."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
import yaml

from servingopt.cli import main

from .conftest import serving

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A samples directory holding the toy ModelServing only."""
    path = tmp_path / "modelservings"
    path.mkdir()
    (path / "toy.yaml").write_text(yaml.safe_dump(serving().to_wire()))
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(serving().to_wire()))
    return path


def test_simulate_json_has_costs_ratios_and_savings(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["simulate", "-f", str(model_file), "--trace", "diurnal:peak=1500", "--duration", "2h",
         "--compare", "hpa,static", "-o", "json"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    rows = {p["policy"]: p for p in out["policies"]}
    assert set(rows) == {"servingopt", "hpa", "static"}
    for row in rows.values():
        assert row["cost"] >= out["oracle"]["cost"] * 0.999
        assert row["oracleRatio"] == pytest.approx(row["cost"] / out["oracle"]["cost"], rel=1e-3)
        assert 0 <= row["sloAttainment"] <= 1
    saving = rows["servingopt"]["savingsVs"]["hpa"]
    assert saving == pytest.approx(1 - rows["servingopt"]["cost"] / rows["hpa"]["cost"], abs=1e-3)


def test_simulate_table_and_bad_input(model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "-f", str(model_file), "--trace", "steady:mean=300",
                 "--duration", "30m", "--policy", "offline", "--compare", "hpa"]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "(d) offline search + HPA" in table and "saves vs hpa" in table
    assert main(["simulate", "-f", str(model_file), "--trace", "nonsense"]) == 2
    assert main(["simulate", "-f", str(model_file), "--trace", "steady", "--policy", "x"]) == 2


def test_simulate_names_the_flag_that_is_wrong(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["simulate", "-f", str(model_file), "--trace", "steady"]
    for extra, message in [
        (["--truth", "abc"], "--truth 'abc'"),
        (["--truth", "no.such-type=1.2"], "no.such-type is not a candidate instance type"),
        (["--duration", "10x"], "--duration '10x'"),
        (["--duration", "0"], "--duration '0'"),
    ]:
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err
    for flag in ("--stretch", "--peak-rps", "--scale"):  # 0 must not mean "not given"
        with pytest.raises(SystemExit):
            main([*base, flag, "0"])
        assert f"argument {flag}" in capsys.readouterr().err


def test_simulate_refuses_a_workload_that_is_not_the_target(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    )
    assert main(["simulate", "-f", str(model_file), "--trace", "steady",
                 "--workload", str(other)]) == 2  # fmt: skip
    assert "is not the ModelServing's targetRef" in capsys.readouterr().err


def test_bench_quick_json_on_one_trace(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "--quick", "--samples", str(samples), "--traces", "steady",
                 "--policies", "static,hpa", "--data", str(tmp_path), "-j", "1",
                 "-o", "json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {(r["sample"], r["trace"], r["policy"]) for r in report["results"]} == {
        ("toy", "steady", "static"),
        ("toy", "steady", "hpa"),
    }
    for row in report["results"]:
        assert {"cost", "oracleRatio", "sloAttainment", "p99LatencyMs"} <= set(row)


SHARED_TRACES = ROOT.parent / "shared" / "data" / "traces"


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="public traces not present")
def test_bench_quick_json_covers_every_sample_trace_and_policy(tmp_path: Path) -> None:
    """The command CI documents, on the shipped samples and the public traces."""
    out = tmp_path / "bench.json"
    code = main(["bench", "--quick", "--samples", str(ROOT / "samples/modelservings"),
                 "--data", str(SHARED_TRACES), "-o", "json", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    samples = {p.stem for p in (ROOT / "samples/modelservings").glob("*.yaml")}
    rows = {(r["sample"], r["trace"], r["policy"]): r for r in report["results"]}
    traces = {t for _, t, _ in rows}
    assert {s for s, _, _ in rows} == samples
    assert {"azure-llm-2023-conv", "azure-llm-2023-code", "alibaba-genai-2026-qps"} <= traces
    assert len(rows) == len(samples) * len(traces) * 5  # every policy on every case
    for row in rows.values():
        assert row["cost"] > 0 and row["oracleRatio"] >= 1.0 - 1e-9
        assert 0.0 <= row["sloAttainment"] <= 1.0
        assert "p99LatencyMs" in row
    assert {g["goal"] for g in report["goals"]}


def test_bench_rejects_inputs_it_cannot_run(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["bench", "--quick", "--samples", str(samples), "--data", str(tmp_path)]
    assert main([*base, "--traces", "steady,nope"]) == 2
    assert "--traces: unknown nope" in capsys.readouterr().err
    assert main([*base, "--policies", "hpa,magic"]) == 2
    assert "--policies: unknown magic" in capsys.readouterr().err
    assert main(["bench", "--samples", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_bench_markdown_sets_servingopt_beside_the_oracle_and_baselines(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "--quick", "--samples", str(samples), "--traces", "steady",
                 "--policies", "static,hpa,offline,servingopt", "--data",
                 str(tmp_path), "-j", "1", "-o", "markdown"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| toy | steady |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 10 and cells[4].endswith("%") and cells[9].endswith("x")
    assert float(cells[3]) >= 1.0  # never below the oracle's lower bound
    assert "Goals as `servingopt bench` counts them" in out


@pytest.mark.browser
def test_report_renders_in_headless_chromium(model_file: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (hack/install-system-deps.sh)")
    report = tmp_path / "report.html"
    assert main(["simulate", "-f", str(model_file), "--trace", "spiky:base=600",
                 "--duration", "3h", "--report", str(report)]) == 0  # fmt: skip
    html = report.read_text()
    for title in ("Demand and provisioned capacity", "Ready replicas", "Instance type over time",
                  "p99 latency per minute", "Cumulative cost"):  # fmt: skip
        assert title in html
    assert "<svg" in html and "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    shot = tmp_path / "report.png"
    log = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--screenshot={shot}", "--window-size=1000,1600", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.exists(), log.stderr[-2000:]
    assert "CONSOLE" not in log.stderr and "Uncaught" not in log.stderr
    assert len(set(png_pixels(shot.read_bytes()))) > 20  # text, axes, lines: not blank


def png_pixels(data: bytes) -> bytes:
    """The decompressed (still filtered) scanlines of a PNG: enough to tell blank pages."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)
