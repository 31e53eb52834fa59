"""Bad input never crashes a command: exit 2 and one line naming the file or flag."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import servingopt.commands.crds
from servingopt.cli import EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "modelservings" / "resnet50-classifier.yaml"
CATALOG = ROOT / "deploy" / "catalog" / "default-instancecatalog.yaml"
STREAM = ROOT / "tests" / "fixtures" / "streams" / "kustomize-build.yaml"
SERVINGOPT = Path(sys.executable).parent / "servingopt"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in-process; argparse's own exit (bad flag syntax) counts as its code."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.fixture
def bad(tmp_path: Path) -> dict[str, Path]:
    """One file per way a YAML input can be broken."""
    files = {
        "deep": "spec: " + "[" * 5000 + "]" * 5000 + "\n",
        "deep-block": "".join("  " * i + "- \n" for i in range(150)),
        "duplicate": SAMPLE.read_text().replace(
            "kind: ModelServing", "kind: ModelServing\nkind: X"
        ),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text)
    paths["utf8"] = tmp_path / "utf8.yaml"
    paths["utf8"].write_bytes(SAMPLE.read_bytes().replace(b"resnet50-classifier", b"r\xff", 1))
    paths["directory"] = tmp_path
    return paths


EXPECTED = {
    # libyaml's scanner stops at its own limit (1,000: "exceeded maximum nesting depth")
    # before the composer sees level 101; PyYAML without libyaml says "nested deeper".
    "deep": "nest",
    "deep-block": "line 101, column 201: nested deeper than 100 levels",
    "duplicate": "duplicate key 'kind' (first at line 11)",
    "utf8": "not valid UTF-8: byte 0xff at offset",
    "directory": "is a directory, not a file",
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_validate_refuses_unreadable_yaml(
    case: str, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["validate", "-f", str(bad[case])], capsys)
    assert code == EXIT_INVALID_INPUT
    line = one_error_line(err)
    assert line.startswith(f"error: {bad[case]}: ") and EXPECTED[case] in line
    assert out == ""


@pytest.mark.parametrize(
    ("flag", "case"),
    [("-f", "deep"), ("-f", "deep-block"), ("--catalog", "utf8"), ("--policy", "directory"),
     ("-f", "duplicate")],
)  # fmt: skip
def test_plan_names_the_flag_of_the_bad_file(
    flag: str, case: str, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"-f": str(SAMPLE), flag: str(bad[case])}
    argv = ["plan", "--rps", "100"] + [word for pair in files.items() for word in pair]
    code, _, err = run(argv, capsys)
    assert code == EXIT_INVALID_INPUT
    line = one_error_line(err)
    assert line.startswith(f"error: {flag} {bad[case]}: ") and EXPECTED[case] in line


@pytest.mark.parametrize(
    ("flag", "case"),
    [("-f", "deep-block"), ("--catalog", "duplicate"), ("--serving-policy", "utf8"),
     ("--workload", "directory"), ("--trace", "directory")],
)  # fmt: skip
def test_simulate_names_the_bad_file(
    flag: str, case: str, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"-f": str(SAMPLE), "--trace": "steady", flag: str(bad[case])}
    argv = ["simulate", "--duration", "10m"] + [word for pair in files.items() for word in pair]
    code, _, err = run(argv, capsys)
    assert code == EXIT_INVALID_INPUT
    line = one_error_line(err)
    assert str(bad[case]) in line and EXPECTED[case] in line
    if flag != "-f":
        assert line.startswith(f"error: {flag} ")


@pytest.mark.parametrize("rps", ["1e308", "nan", "inf", "-inf", "-1", "1e10"])
def test_plan_refuses_absurd_rps(rps: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["plan", "-f", str(SAMPLE), f"--rps={rps}"], capsys)
    assert code == EXIT_INVALID_INPUT and out == ""
    assert one_error_line(err).startswith("error: --rps must be a number within 0..1e+09")


def test_plan_takes_the_largest_rps_it_allows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "-f", str(SAMPLE), "--rps", "1e9", "-o", "json"], capsys)
    assert code in (EXIT_OK, 4) and '"sloFeasible"' in out


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_plan_refuses_a_non_finite_catalog_price(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CATALOG.read_text().replace("onDemandHourly: 0.526", f"onDemandHourly: {value}", 1)
    assert text != CATALOG.read_text()  # the g4dn.xlarge price, which the sample uses
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(text)
    code, out, err = run(["plan", "-f", str(SAMPLE), "--catalog", str(catalog), "--rps", "100"],
                         capsys)  # fmt: skip
    assert code == EXIT_INVALID_INPUT and out == ""
    assert err.startswith(f"error: --catalog {catalog}: invalid InstanceCatalog")
    assert "onDemandHourly" in err


HISTORY = "timestamp,requests_per_second\n"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (HISTORY.encode() + b"0,\xff\n", "not valid UTF-8: byte 0xff at offset 32 (line 2)"),
        (HISTORY.encode() + b"nan,1\n", "line 2: timestamp 'nan'"),
        (HISTORY.encode() + b"0,1\n1e400,1\n", "line 3: timestamp '1e400'"),
        (HISTORY.encode() + b"0,1\n60,1e308\n", "line 3: requests_per_second must be within"),
        (HISTORY.encode() + b"0,1\n60," + b"1" * 200_000 + b"\n", "line 3: field larger than"),
        (b"time,rps\n0,1\n", "header must name timestamp, requests_per_second"),
    ],
    ids=["utf8", "nan-timestamp", "inf-timestamp", "huge-rps", "huge-field", "header"],
)
def test_plan_history_errors_name_the_line(
    content: bytes, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.csv"
    history.write_bytes(content)
    code, _, err = run(["plan", "-f", str(SAMPLE), "--history", str(history)], capsys)
    assert code == EXIT_INVALID_INPUT
    line = one_error_line(err)
    assert line.startswith(f"error: --history {history}: ") and fragment in line


def test_plan_history_with_a_byte_order_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "excel.csv"
    history.write_bytes(b"\xef\xbb\xbf" + HISTORY.encode() + b"0,100\n60,120\n")
    code, out, _ = run(["plan", "-f", str(SAMPLE), "--history", str(history)], capsys)
    assert code == EXIT_OK and "meets the SLO" in out


def test_plan_history_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "-f", str(SAMPLE), "--history", str(tmp_path)], capsys)
    assert code == EXIT_INVALID_INPUT
    assert one_error_line(err) == f"error: --history {tmp_path}: is a directory, not a file"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--scale", "1e300"], "demand peaks at 1e+302 req/s, more than 1e+09"),
        (["--peak-rps", "1e10"], "argument --peak-rps: '1e10' must be at most 1e+09"),
        (["--stretch", "1e6"], "--stretch 1e+06: the stretched trace would last 6944 days"),
        (["--duration", "inf"], "--duration 'inf': must be between 1 s and 366 days"),
        (["--duration", "1e12d"], "--duration '1e12d'"),
        (["--truth", "inf"], "--truth: factors must be > 0 and at most 100"),
        (["--replan-minutes", "inf"], "argument --replan-minutes: 'inf' must be a finite"),
        (["--replan-minutes", "0.001"], "'0.001' is shorter than one second"),
        (["--seed", "-1"], "argument --seed: '-1' must be >= 0"),
        (["--report", "/"], "--report /: is a directory"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_simulate_refuses_absurd_numbers(
    extra: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "-f", str(SAMPLE), "--trace", "steady", "--duration", "10m", *extra]
    code, out, err = run(argv, capsys)
    assert code == EXIT_INVALID_INPUT and out == ""
    assert fragment in err


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("steady:seconds=1e15", "the trace would last"),
        ("steady:mean=inf", "rates must be finite"),
        ("{tmp}/nan.csv", "the trace would last nan days"),
        ("{tmp}/short.csv", "--trace {tmp}/short.csv: "),
        ("{tmp}/latin1.csv", "not valid UTF-8: byte 0xe9"),
    ],
    ids=["long-generator", "inf-generator", "nan-time", "short-row", "latin1"],
)
def test_simulate_refuses_broken_traces(
    spec: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nan.csv").write_text("timestamp,requests_per_second\nnan,1\n0,2\n")
    (tmp_path / "short.csv").write_text("timestamp,requests_per_second\n0\n60,2\n")
    (tmp_path / "latin1.csv").write_bytes(b"timestamp,requests_per_second,note\n0,1,caf\xe9\n")
    tmp = str(tmp_path)
    argv = ["simulate", "-f", str(SAMPLE), "--trace", spec.format(tmp=tmp), "--compare", "static"]
    code, _, err = run(argv, capsys)
    assert code == EXIT_INVALID_INPUT
    assert fragment.format(tmp=tmp) in one_error_line(err)


@pytest.mark.parametrize(
    "body",
    ["spec: null", "spec: {template: {spec: {containers: x}}}",
     "spec: {template: {spec: {containers: [{env: [x]}]}}}"],
)  # fmt: skip
def test_simulate_refuses_a_malformed_workload(
    body: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = tmp_path / "workload.yaml"
    workload.write_text(
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: resnet50-classifier}}\n{body}\n"
    )
    argv = ["simulate", "-f", str(SAMPLE), "--trace", "steady", "--workload", str(workload)]
    code, _, err = run(argv, capsys)
    assert code == EXIT_INVALID_INPUT
    assert one_error_line(err).startswith(f"error: --workload {workload}: a Deployment")


def test_bench_refuses_bad_flags_and_data(
    tmp_path: Path, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "azure-llm-2023-conv.csv").write_bytes(b"TIMESTAMP\n\xff\n")
    base = ["bench", "--quick", "--samples", str(samples), "--traces", "steady"]
    for extra, fragment in [
        (["-j", "0"], "argument -j/--jobs: '0' must be within 1..256"),
        (["--seed", "-3"], "argument --seed: '-3' must be >= 0"),
        (["--replan-minutes", "nan"], "argument --replan-minutes: 'nan' must be a finite"),
        (["--out", str(tmp_path)], f"--out {tmp_path}: is a directory"),
        (["--data", str(data), "--traces", "azure-llm-2023-conv"],
         f"--data {data}/azure-llm-2023-conv.csv: not valid UTF-8"),
    ]:  # fmt: skip
        code, out, err = run([*base, *extra], capsys)
        assert code == EXIT_INVALID_INPUT, extra
        assert fragment in err and out == "", (extra, err)


def test_bench_skips_an_unreadable_sample(
    tmp_path: Path, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "deep.yaml").write_text(bad["deep-block"].read_text())
    argv = ["bench", "--quick", "--samples", str(samples), "--traces", "steady",
            "--policies", "static", "-j", "1", "-o", "json"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == EXIT_OK and '"builtin-classifier"' in out
    assert f"skipping {samples / 'deep.yaml'}: " in err and "nested deeper than 100" in err


# ------------------------------------------------------- validate on a kustomize stream


def test_validate_reads_a_kustomize_stream_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, STREAM.read_bytes())
    code, out, err = run(["validate", "-f", "-", "--catalog", str(CATALOG)], capsys)
    assert code == EXIT_OK, out + err
    lines = out.splitlines()
    assert "<stdin>#9 apps/v1 Deployment/servingopt: skipped (not a servingopt kind)" in lines
    assert (
        "<stdin>#1 apiextensions.k8s.io/v1 CustomResourceDefinition/modelservings.servingopt.io: "
        "skipped (not a servingopt kind)"
    ) in lines
    assert sum(line.endswith("skipped (not a servingopt kind)") for line in lines) == 12
    assert [line for line in lines if line.endswith(": valid")] == [
        "<stdin>#12 InstanceCatalog/default: valid",
        "<stdin>#13 ModelServing/resnet50-classifier: valid",
        "<stdin>#14 ServingPolicy/conservative: valid",
    ]
    assert err == ""


def test_validate_quiet_stream_prints_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, STREAM.read_bytes())
    assert run(["validate", "-q", "-f", "-"], capsys) == (EXIT_OK, "", "")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("apiVersion: servingopt.io/v1alpha1\nkind: ModelServing",
         "apiVersion: servingopt.io/v1\nkind: ModelServing",
         "<stdin>#13 ModelServing/resnet50-classifier: apiVersion: must be"),
        ("kind: ServingPolicy", "kind: ServingPolicies",
         "<stdin>#14 ServingPolicies/conservative: kind: must be one of"),
        ("latencyP99Ms: 40", "latencyP99Ms: -40",
         "<stdin>#13 ModelServing/resnet50-classifier: spec.slo.latencyP99Ms"),
    ],
    ids=["other-version", "unknown-kind", "invalid-field"],
)  # fmt: skip
def test_validate_stream_fails_on_any_bad_servingopt_document(
    old: str, new: str, fragment: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    text = STREAM.read_text()
    assert old in text
    feed_stdin(monkeypatch, text.replace(old, new, 1).encode())
    code, out, _ = run(["validate", "-q", "-f", "-"], capsys)
    assert code == EXIT_INVALID_INPUT
    assert any(line.startswith(fragment) for line in out.splitlines()), out


def test_validate_stream_without_servingopt_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n")
    code, out, err = run(["validate", "-f", str(path)], capsys)
    assert code == EXIT_OK
    assert out == f"{path}#0 v1 ConfigMap/c: skipped (not a servingopt kind)\n"
    assert one_error_line(err) == f"note: {path}: no servingopt documents to check"


def test_validate_expands_a_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ms = yaml.safe_load(SAMPLE.read_text())
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [ms, ms]}))
    code, out, _ = run(["validate", "-f", str(path)], capsys)
    assert code == EXIT_OK
    assert f"{path}#0.items[1] ModelServing/resnet50-classifier: valid" in out.splitlines()


def test_stdin_only_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, b"")
    code, _, err = run(["validate", "-f", "-", "--catalog", "-"], capsys)
    assert code == EXIT_INVALID_INPUT and "can be given only once" in err
    code, _, err = run(["plan", "-f", "-", "--policy", "-", "--rps", "1"], capsys)
    assert code == EXIT_INVALID_INPUT and "can be given only once" in err


def test_plan_reads_the_modelserving_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, SAMPLE.read_bytes())
    code, out, _ = run(["plan", "-f", "-", "--rps", "100"], capsys)
    assert code == EXIT_OK and out.startswith("resnet50-classifier: ")


# ------------------------------------------------------------------ the top level


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(servingopt.commands.crds, "cmd_crds", interrupted)
    assert run(["crds", "--stdout"], capsys) == (EXIT_INTERRUPTED, "", "")


def test_a_bug_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_: object) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(servingopt.commands.crds, "cmd_crds", broken)
    monkeypatch.delenv("SERVINGOPT_DEBUG", raising=False)
    code, _, err = run(["crds", "--stdout"], capsys)
    assert code == EXIT_INTERNAL_ERROR
    assert err.splitlines()[0] == "servingopt: internal error: RuntimeError: boom second line"
    assert "please report it" in err and len(err.splitlines()) == 2


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(servingopt.commands.crds, "cmd_crds", broken)
    monkeypatch.setenv("SERVINGOPT_DEBUG", "1")
    assert main(["crds", "--stdout"]) == EXIT_INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_a_broken_pipe_elsewhere_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # stdout (a file here) still works: the EPIPE came from some other pipe or socket.
    def broken(_: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(servingopt.commands.crds, "cmd_crds", broken)
    assert main(["crds", "--stdout"]) == EXIT_INTERNAL_ERROR
    assert "internal error: BrokenPipeError" in capfd.readouterr().err


@pytest.mark.skipif(not SERVINGOPT.exists(), reason="console script not installed")
def test_closed_stdout_pipe_exits_quietly(tmp_path: Path) -> None:
    # Far more output than a pipe buffers, and a reader that stops after one byte.
    stream = tmp_path / "stream.yaml"
    stream.write_text("---\n".join(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"
                                   for i in range(5000)))  # fmt: skip
    env = {**os.environ, "SERVINGOPT_DEBUG": ""}
    writer = subprocess.Popen(
        [str(SERVINGOPT), "validate", "-f", str(stream)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(["head", "-c1"], stdin=writer.stdout, capture_output=True, check=True)
    writer.stdout.close()
    err = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == EXIT_INVALID_INPUT
    assert head.stdout == b"/"  # the first byte of "/tmp/…/stream.yaml#0 v1 ConfigMap/c0: …"
    assert err == ""


@pytest.mark.parametrize(
    "mutation",
    [{"metadata": [1]}, {"metadata": "x"}, {"metadata": {"name": [1]}}, {"spec": [1]},
     {"spec": None}, {"apiVersion": [1]}, {"kind": {"a": 1}}],
    ids=lambda m: yaml.safe_dump(m, default_flow_style=True).strip(),
)  # fmt: skip
def test_wrong_shapes_are_problems_not_crashes(
    mutation: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {**yaml.safe_load(SAMPLE.read_text()), **mutation}
    path = tmp_path / "shape.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out, _ = run(["validate", "-q", "-f", str(path)], capsys)
    assert code == EXIT_INVALID_INPUT and out.startswith(f"{path}#0 ")
    code, _, err = run(["plan", "-f", str(path), "--rps", "100"], capsys)
    assert code == EXIT_INVALID_INPUT and err.startswith(f"error: -f {path}: ")


def test_crds_dir_that_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run(["crds", "--dir", str(blocker / "crds")], capsys)
    assert code == EXIT_INVALID_INPUT and out == ""
    assert one_error_line(err) == f"error: --dir {blocker / 'crds'}: Not a directory"
