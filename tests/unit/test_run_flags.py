"""`servingopt run` refuses what it cannot use before it starts: Prometheus credential
flags that do not fit together (exit 2), and no Kubernetes credentials at all (exit 6),
each in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from servingopt.cli import main
from servingopt.commands.exits import EXIT_INVALID_INPUT, EXIT_NO_CREDENTIALS


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--prometheus-bearer-token-file", "TOKEN"], "need --prometheus-url"),
        (
            ["--prometheus-url", "https://p:9090", "--prometheus-bearer-token-file", "/no/such"],
            "no such file",
        ),
        (["--prometheus-url", "https://p:9090", "--prometheus-header", "novalue"], "NAME=VALUE"),
        (["--prometheus-url", "https://p:9090", "--prometheus-username", "u"], "needs both"),
    ],
)
def test_prometheus_credential_flags_that_do_not_fit_exit_2(
    flags: list[str], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    argv = ["run", *(str(token) if f == "TOKEN" else f for f in flags)]
    assert main(argv) == EXIT_INVALID_INPUT
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1


def test_no_kubernetes_credentials_exit_6_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["run", "--liveness=", "--metrics-bind="]) == EXIT_NO_CREDENTIALS
    err = capsys.readouterr().err
    assert err.startswith("servingopt run: no usable Kubernetes credentials")
    assert "in-cluster service account" in err and err.count("\n") == 1
