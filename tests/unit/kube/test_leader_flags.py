"""``servingopt run``'s leader-election flags, parsed and checked before any I/O."""

from __future__ import annotations

import pytest

from servingopt.cli import EXIT_INVALID_INPUT, build_parser, main
from servingopt.commands.run import options_from
from servingopt.controller.settings import Options


def parse(argv: list[str]) -> Options:
    return options_from(build_parser().parse_args(["run", *argv]))


def test_off_by_default_for_a_single_local_process() -> None:
    assert parse([]).election is None


def test_defaults_come_from_the_downward_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "servingopt-5f7-x2")
    monkeypatch.setenv("POD_NAMESPACE", "ops")
    election = parse(["--leader-elect"]).election
    assert election is not None
    assert (election.identity, election.namespace, election.name) == (
        "servingopt-5f7-x2",
        "ops",
        "servingopt",
    )
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (15, 10, 2)


def test_without_the_downward_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    election = parse(["--leader-elect", "--leader-elect-retry-period=1"]).election
    assert election is not None
    assert election.namespace == "servingopt-system" and election.retry_period == 1
    assert election.identity  # host_pid_random


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--leader-elect", "--leader-elect-renew-deadline=20"], "longer than the renew deadline"),
        (["--leader-elect", "--leader-election-id=Not/A/Name"], "DNS subdomain"),
        (["--peering=servingopt"], "--peering was removed"),
    ],
)
def test_bad_settings_are_refused_before_any_io(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *argv]) == EXIT_INVALID_INPUT
    assert message in capsys.readouterr().err
