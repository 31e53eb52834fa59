"""A history CSV as the loop's input: what ``servingopt plan --history`` reads (text in).

Header required: ``timestamp`` (ISO-8601 or unix seconds) and ``requests_per_second``;
optional observed columns ``p99_latency_ms``, ``replicas`` and what ran then:
``instance_type``, ``variant``, ``max_batch_size``, ``capacity_type``,
``max_queue_delay_us``, and ``rolling`` (``true`` while a rollout of the workload was in
flight: old and new pods serving). Empty optional cells mean unknown.

The last row says what runs now; the rows before it since when: the running
configuration began at the first row after the last row that showed another
configuration (``changed_at``), and has served alone from the first row after that one
that is not ``rolling``. The guard sees that as the operator's memory of its last change
(and the minimum interval counts from ``changed_at``); the planner learns from the rows
it has served alone, as the operator does. A history that never shows another
configuration was never changed: every row is the running configuration's. Whatever the
history does not say about the running configuration (a column it lacks, an empty cell
in its last row; always the HPA's bounds, target and behavior) is taken to be what the
plan proposes, so the guard judges what the history does say.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from servingopt.api import InstanceCatalog, ModelServingSpec, ServingPolicySpec, effective_mode
from servingopt.guard import GuardMemory
from servingopt.values import FloatArray, MetricHistory, ServingConfig

from .core import LoopInput, LoopOutput, Planner, step
from .running import running_hourly

REQUIRED = ("timestamp", "requests_per_second")
NUMERIC = ("p99_latency_ms", "replicas", "max_batch_size", "max_queue_delay_us")
TEXT = ("instance_type", "variant", "capacity_type")
FLAGS = ("rolling",)
MAX_RPS = 1e9  # far above any one model's traffic; beyond it replica counts overflow
TRUE = frozenset({"true", "yes", "1"})
FALSE = frozenset({"false", "no", "0", ""})


class RowConfig(NamedTuple):
    """What one row says ran ("" / None: not said)."""

    instance_type: str
    variant: str
    capacity_type: str
    max_batch_size: int | None
    max_queue_delay_us: int | None


# What the history may say about the running configuration (columns named like the
# ServingConfig fields they give).
RUNNING_COLUMNS = (
    "instance_type",
    "variant",
    "capacity_type",
    "max_batch_size",
    "max_queue_delay_us",
)


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


@dataclass(frozen=True, eq=False)
class RecordedHistory:
    """The CSV's rows as columns, sorted by time (NaN / "" where a cell is empty)."""

    timestamps_s: FloatArray
    requests_per_second: FloatArray
    p99_latency_ms: FloatArray
    replicas: FloatArray
    max_batch_size: FloatArray
    max_queue_delay_us: FloatArray
    instance_type: tuple[str, ...]
    variant: tuple[str, ...]
    capacity_type: tuple[str, ...]
    rolling: npt.NDArray[np.bool_]
    columns: frozenset[str]
    """The optional columns the header names."""

    def __len__(self) -> int:
        return int(self.timestamps_s.size)

    def metrics(self) -> MetricHistory:
        return MetricHistory(
            self.timestamps_s, self.requests_per_second, self.p99_latency_ms, self.replicas
        )

    def _config(self, i: int) -> RowConfig:
        def number(values: FloatArray) -> int | None:
            return None if math.isnan(values[i]) else int(values[i])

        return RowConfig(
            self.instance_type[i],
            self.variant[i],
            self.capacity_type[i],
            number(self.max_batch_size),
            number(self.max_queue_delay_us),
        )

    def until(self, now: float) -> RecordedHistory:
        """The rows at or before ``now``."""
        n = int(np.searchsorted(self.timestamps_s, now, side="right"))
        return RecordedHistory(
            self.timestamps_s[:n],
            self.requests_per_second[:n],
            self.p99_latency_ms[:n],
            self.replicas[:n],
            self.max_batch_size[:n],
            self.max_queue_delay_us[:n],
            self.instance_type[:n],
            self.variant[:n],
            self.capacity_type[:n],
            self.rolling[:n],
            self.columns,
        )

    def _known(self, i: int) -> bool:
        """Whether row ``i`` names a configuration (a placement) at all."""
        return bool(self.instance_type[i] or self.variant[i])

    def running(self, spec: ModelServingSpec, catalog: InstanceCatalog) -> ServingConfig:
        """What the last row says runs, as the operator would read it back (unset: not
        said; batching and variant only where the spec lets servingopt set them)."""
        last = len(self) - 1
        row = self._config(last)
        known = catalog.by_name().get(row.instance_type)
        batching = spec.batching.enabled
        return ServingConfig(
            instance_type=row.instance_type or None,
            pool=known.pool if known is not None else None,
            capacity_type=row.capacity_type or None,
            variant=(row.variant or None) if spec.variants else None,
            max_batch_size=row.max_batch_size if batching else None,
            max_queue_delay_us=row.max_queue_delay_us if batching else None,
        )

    def unsaid(self, spec: ModelServingSpec) -> frozenset[str]:
        """ServingConfig fields the history does not say (taken as proposed)."""
        last = len(self) - 1
        out = {"min_replicas", "max_replicas", "scaling_target", "behavior", "pool"}
        out |= {"cache_enabled", "cache_size_mib"}
        said = self._config(last)._asdict()
        for name in RUNNING_COLUMNS:
            if name not in self.columns or said[name] in ("", None):
                out.add(name)
        if not spec.batching.enabled:
            out -= {"max_batch_size", "max_queue_delay_us"}
        if not spec.variants:
            out.discard("variant")
        if "instance_type" not in out:
            out.discard("pool")
        return frozenset(out)

    def change(self) -> tuple[float | None, float | None]:
        """(changed_at, serving_since) of the running configuration: (None, None) when the
        history never shows another configuration."""
        last = len(self) - 1
        running = self._config(last)
        previous = next(
            (i for i in range(last, -1, -1) if self._known(i) and self._config(i) != running),
            None,
        )
        if previous is None:
            return None, None
        changed = previous + 1
        alone = next(
            (i for i in range(changed + 1, last + 1) if not self.rolling[i]),
            None,
        )
        since = float(self.timestamps_s[alone]) if alone is not None else None
        return float(self.timestamps_s[changed]), since

    def memory(self) -> GuardMemory:
        changed, since = self.change()
        return GuardMemory(last_change_at=changed, serving_since=since, rolled_at=changed)

    def loop_input(
        self,
        *,
        now: float,
        spec: ModelServingSpec,
        catalog: InstanceCatalog,
        policy: ServingPolicySpec,
        plan_for_rps: float | None = None,
        cache_hit_rate: float | None = None,
    ) -> LoopInput:
        """The loop's input at ``now`` (rows after ``now`` are left out)."""
        upto = self.until(now)
        if not len(upto):
            raise HistoryError(f"no rows at or before --now ({now:g})")
        running = upto.running(spec, catalog)
        last = len(upto) - 1
        replicas = None if math.isnan(upto.replicas[last]) else int(upto.replicas[last])
        p99 = upto.p99_latency_ms[last]
        capacity = running.capacity_type or "on-demand"
        pods = (
            [(running.instance_type, capacity, replicas)]
            if running.instance_type and replicas
            else []
        )
        return LoopInput(
            now=now,
            mode=effective_mode(spec, policy),
            spec=spec,
            catalog=catalog,
            policy=policy,
            running=running,
            replicas=replicas,
            history=upto.metrics(),
            demand_rps=float(upto.requests_per_second[last]),
            plan_for_rps=plan_for_rps,
            observed_p99_ms=None if math.isnan(p99) else float(p99),
            metrics_available=True,
            memory=upto.memory(),
            current_hourly=running_hourly(catalog, spec, pods),
            rollout_in_flight=bool(upto.rolling[last]),
            cache_hit_rate=cache_hit_rate,
        )


def step_on_history(inp: LoopInput, unsaid: frozenset[str], planner: Planner) -> LoopOutput:
    """:func:`~servingopt.loop.step` with what the history does not say about the
    running configuration taken as proposed (the plan is made once)."""
    out = step(inp, planner)
    if out.decision is None or out.proposal is None or not unsaid:
        return out
    proposed = out.proposal.config
    running = replace(inp.running, **{name: getattr(proposed, name) for name in unsaid})
    decision = out.decision
    return step(replace(inp, running=running), lambda *_: decision)


def parse_history(text: str) -> RecordedHistory:
    """The CSV's rows; :class:`HistoryError` naming the line and column when invalid."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        rows = _read(reader)
    except csv.Error as error:  # e.g. a field over the csv module's size limit
        raise HistoryError(f"line {reader.line_num + 1}: {error}") from None
    header = set(reader.fieldnames or [])
    if not rows:
        raise HistoryError("no data rows")
    rows.sort(key=lambda r: r[0])
    ts = np.array([r[0] for r in rows])
    if np.any(np.diff(ts) <= 0):
        raise HistoryError("timestamps must be distinct")
    cols = {name: np.array([r[1][name] for r in rows]) for name in ("rps", *NUMERIC)}
    texts = {name: tuple(r[2][name] for r in rows) for name in TEXT}
    return RecordedHistory(
        timestamps_s=ts,
        requests_per_second=cols["rps"],
        p99_latency_ms=cols["p99_latency_ms"],
        replicas=cols["replicas"],
        max_batch_size=cols["max_batch_size"],
        max_queue_delay_us=cols["max_queue_delay_us"],
        instance_type=texts["instance_type"],
        variant=texts["variant"],
        capacity_type=texts["capacity_type"],
        rolling=np.array([r[3] for r in rows], dtype=bool),
        columns=frozenset(header & {*NUMERIC, *TEXT, *FLAGS}),
    )


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


def _flag(text: str, line: int, column: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise HistoryError(f"line {line}: {column} must be true or false, got {text!r}")


def _read(
    reader: csv.DictReader[str],
) -> list[tuple[float, dict[str, float], dict[str, str], bool]]:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise HistoryError(f"header must name {', '.join(REQUIRED)}; missing {', '.join(missing)}")
    reader.fieldnames = header
    return list(_rows(reader))


def _rows(
    reader: Iterable[dict[str, str]],
) -> Iterable[tuple[float, dict[str, float], dict[str, str], bool]]:
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
        yield ts, nums, texts, _flag(row.get("rolling") or "", line, "rolling")
