"""The README's first hour, run as written: the shell lines between its first-hour
markers, taken from README.md (not copied here), in one bash from the repository root,
on a dev cluster of their own. The ModelServing must end Optimized."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- first-hour:begin -->\n```sh\n(.*?)```\n<!-- first-hour:end -->", re.S)


def readme_commands() -> str:
    found = BLOCK.search((ROOT / "README.md").read_text())
    assert found, "README.md has no first-hour block"
    return found.group(1)


def test_the_readme_first_hour_works_as_written() -> None:
    script = readme_commands()
    assert "dev-cluster up" in script and "kubectl wait ms/" in script
    down = [str(ROOT / ".venv/bin/servingopt"), "dev-cluster", "down", "--name", "first-hour"]
    subprocess.run(down, cwd=ROOT, capture_output=True, check=False)  # a leftover run's
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its background operator is killed with it
    )
    try:
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        subprocess.run(down, cwd=ROOT, capture_output=True, check=False)
        log = ROOT / "operator.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        log.unlink(missing_ok=True)
    print(stdout[-3000:])
    assert proc.returncode == 0, f"{stderr[-3000:]}\n--- operator.log\n{tail}"
    assert "condition met" in stdout
    table = stdout.split("condition met", 1)[1]
    assert "resnet50-classifier" in table and "True" in table  # the READY column
