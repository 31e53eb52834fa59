"""Parse a demand history CSV into an :class:`Observation` (text in, arrays out).

Header required: ``timestamp`` (ISO-8601 or unix seconds) and
``requests_per_second``; optional observed columns ``p99_latency_ms``, ``replicas``,
``instance_type``, ``variant``, ``max_batch_size`` (what was running then).  Empty
optional cells mean unknown.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from servingopt.values import Observation, RunningConfig

REQUIRED = ("timestamp", "requests_per_second")
NUMERIC = ("p99_latency_ms", "replicas", "max_batch_size")
TEXT = ("instance_type", "variant")
MAX_RPS = 1e9  # far above any one model's traffic; beyond it replica counts overflow


class HistoryError(ValueError):
    """The CSV cannot be read; the message names the line and column."""


def parse_timestamp(text: str) -> float:
    """Unix seconds from unix seconds or ISO-8601 (naive times are UTC)."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _number(text: str, line: int, column: str, *, required: bool, most: float = math.inf) -> float:
    if not text.strip():
        if required:
            raise HistoryError(f"line {line}: {column} is empty")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise HistoryError(f"line {line}: {column} {text!r} is not a number") from None
    if not 0 <= value <= most or not math.isfinite(value):
        bound = f"within 0..{most:g}" if math.isfinite(most) else "a finite number >= 0"
        raise HistoryError(f"line {line}: {column} must be {bound}, got {text!r}")
    return value


def parse_history(text: str, **observation: Any) -> Observation:
    """An :class:`Observation` from CSV text; extra keyword arguments pass through."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        rows = _read(reader)
    except csv.Error as error:  # e.g. a field over the csv module's size limit
        raise HistoryError(f"line {reader.line_num + 1}: {error}") from None
    header = list(reader.fieldnames or [])
    if not rows:
        raise HistoryError("no data rows")
    rows.sort(key=lambda r: r[0])
    ts = np.array([r[0] for r in rows])
    if np.any(np.diff(ts) <= 0):
        raise HistoryError("timestamps must be distinct")
    cols = {name: np.array([r[1][name] for r in rows]) for name in ("rps", *NUMERIC)}
    texts = {name: tuple(r[2][name] for r in rows) for name in TEXT}
    present = set(header)
    last = rows[-1]
    current = RunningConfig(
        instance_type=last[2]["instance_type"] or None,
        variant=last[2]["variant"] or None,
        replicas=None if math.isnan(last[1]["replicas"]) else int(last[1]["replicas"]),
        max_batch_size=(
            None if math.isnan(last[1]["max_batch_size"]) else int(last[1]["max_batch_size"])
        ),
    )
    return Observation(
        timestamps_s=ts,
        requests_per_second=cols["rps"],
        p99_latency_ms=cols["p99_latency_ms"] if "p99_latency_ms" in present else np.zeros(0),
        replicas=cols["replicas"] if "replicas" in present else np.zeros(0),
        max_batch_sizes=cols["max_batch_size"] if "max_batch_size" in present else np.zeros(0),
        instance_types=texts["instance_type"] if "instance_type" in present else (),
        variants=texts["variant"] if "variant" in present else (),
        current=observation.pop("current", current),
        **observation,
    )


def _read(reader: csv.DictReader[str]) -> list[tuple[float, dict[str, float], dict[str, str]]]:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise HistoryError(f"header must name {', '.join(REQUIRED)}; missing {', '.join(missing)}")
    reader.fieldnames = header
    return list(_rows(reader))


def _rows(
    reader: Iterable[dict[str, str]],
) -> Iterable[tuple[float, dict[str, float], dict[str, str]]]:
    for line, row in enumerate(reader, start=2):
        stamp = (row.get("timestamp") or "").strip()
        if not stamp:
            raise HistoryError(f"line {line}: timestamp is empty")
        try:
            ts = parse_timestamp(stamp)
            if not math.isfinite(ts):
                raise ValueError(stamp)
        except (ValueError, OverflowError):
            raise HistoryError(
                f"line {line}: timestamp {stamp!r} is neither ISO-8601 nor unix seconds"
            ) from None
        nums = {
            "rps": _number(
                row.get("requests_per_second") or "",
                line,
                "requests_per_second",
                required=True,
                most=MAX_RPS,
            )
        }
        for name in NUMERIC:
            nums[name] = _number(row.get(name) or "", line, name, required=False)
        texts = {name: (row.get(name) or "").strip() for name in TEXT}
        yield ts, nums, texts
