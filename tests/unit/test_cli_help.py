"""Every subcommand's --help ends with examples, and every example parses: its flags
exist and take the values shown (a renamed flag breaks this test, not a user)."""

from __future__ import annotations

import re
import shlex

import pytest

from servingopt.cli import build_parser, main
from servingopt.commands import COMMANDS
from servingopt.commands.helptext import EXAMPLES


def help_of(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def example_lines(text: str) -> list[str]:
    """The example command lines of a help text, continuation lines joined."""
    _, _, tail = text.partition(f"\n{EXAMPLES}\n")
    lines, pending = [], ""
    for raw in tail.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\")
        if not line.endswith("\\"):
            lines.append(pending)
            pending = ""
    return lines


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_every_subcommand_help_shows_examples_that_parse(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = example_lines(help_of([name], capsys))
    invocations = [
        part.strip()
        for line in lines
        for part in line.split("|")
        if part.strip().startswith(f"servingopt {name}")
    ]
    assert invocations, f"servingopt {name} --help shows no example of itself"
    for invocation in invocations:
        words = shlex.split(invocation.split("#", 1)[0].split(">", 1)[0])[1:]
        args = build_parser(words).parse_args(words)  # exits 2 on an unknown flag
        assert args.command == name
        assert getattr(args, "func", None) is not None, invocation


def test_the_version_is_written_once_and_the_shipped_image_tag_follows_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.metadata
    from pathlib import Path

    import yaml

    import servingopt

    root = Path(__file__).resolve().parents[2]
    assert importlib.metadata.version("servingopt") == servingopt.__version__
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"servingopt {servingopt.__version__}"
    kustomization = yaml.safe_load((root / "deploy/operator/kustomization.yaml").read_text())
    tags = {image["newTag"] for image in kustomization["images"]}
    assert tags == {servingopt.__version__}
    chart = yaml.safe_load((root / "deploy/helm/servingopt/Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == servingopt.__version__
    assert re.search(r'^version\s*=\s*"', (root / "pyproject.toml").read_text(), re.M) is None
