"""A real Prometheus server for the dev cluster, on loopback, that tests can extend.

Two ways to add what it scrapes:
- `add_static_targets(job, ["127.0.0.1:9100"])` writes a file-SD file; Prometheus
  notices it by itself within a second, no reload needed.
- `add_scrape_config({...})` appends a whole scrape config and reloads the server
  (POST /-/reload, enabled with --web.enable-lifecycle).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from servingopt.devcluster.kubectl import wait_until
from servingopt.devcluster.process import ProcessRecord, spawn

FILE_SD_JOB = "servingopt-file-sd"


@dataclass(frozen=True)
class Prometheus:
    binary: Path
    directory: Path
    port: int
    scrape_interval: str = "1s"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "prometheus.yml"

    @property
    def targets_dir(self) -> Path:
        return self.directory / "targets"

    def base_config(self) -> dict[str, Any]:
        interval = self.scrape_interval
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [self._addr]}]},
                {
                    "job_name": FILE_SD_JOB,
                    "file_sd_configs": [
                        {"files": [str(self.targets_dir / "*.json")], "refresh_interval": "1s"}
                    ],
                },
            ],
        }

    @property
    def _addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, detach: bool) -> ProcessRecord:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self._write_config(self.base_config())
        argv = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address={self._addr}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        _, rec = spawn("prometheus", argv, self.directory / "prometheus.log", detach=detach)
        return rec

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(
            lambda: _get(f"{self.url}/-/ready").startswith(b"Prometheus"),
            timeout,
            "prometheus to be ready",
        )

    def add_static_targets(
        self, job: str, targets: list[str], labels: dict[str, str] | None = None
    ) -> Path:
        """Scrape `targets` (host:port) under job name `job`; picked up without a reload."""
        entry = {"targets": targets, "labels": {"job": job, **(labels or {})}}
        path = self.targets_dir / f"{job}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([entry]))
        tmp.rename(path)  # atomic, so Prometheus never reads half a file
        return path

    def remove_static_targets(self, job: str) -> None:
        (self.targets_dir / f"{job}.json").unlink(missing_ok=True)

    def add_scrape_config(self, scrape_config: dict[str, Any]) -> None:
        """Appends a full scrape config (replacing one of the same job_name) and reloads."""
        config = yaml.safe_load(self.config_path.read_text())
        jobs = [c for c in config["scrape_configs"] if c["job_name"] != scrape_config["job_name"]]
        config["scrape_configs"] = [*jobs, scrape_config]
        self._write_config(config)
        self.reload()

    def reload(self) -> None:
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; returns the `result` list."""
        qs = urllib.parse.urlencode({"query": promql})
        body = json.loads(_get(f"{self.url}/api/v1/query?{qs}"))
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        body = json.loads(_get(f"{self.url}/api/v1/targets?state=active"))
        targets: list[dict[str, Any]] = body["data"]["activeTargets"]
        return targets

    def _write_config(self, config: dict[str, Any]) -> None:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.rename(self.config_path)


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body
