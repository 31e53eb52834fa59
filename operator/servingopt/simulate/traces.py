"""Demand traces: generators, loaders, rescaling and time-stretching.

A :class:`Trace` is a request rate per second (requests/s, one value per second of
replay).  Traces loaded from request timestamps also keep the exact number of requests
that arrived in each second (``counts``); the replay uses those instead of drawing
Poisson arrivals, unless the trace was rescaled or stretched (then only the rate
survives).

Generators (all seeded, all return per-second rates):

* ``steady`` — a constant rate (``mean``), with optional slow ±``noise`` wobble;
* ``diurnal`` — one sinusoidal day: peak ``peak`` at 14:00, trough ``peak / ratio`` at
  02:00, plus a smoothed random wobble (``noise``, relative);
* ``weekly`` — diurnal days with weekends at ``weekend`` x the weekday level;
* ``spiky`` — a steady/diurnal base plus flash crowds: ``spikes_per_day`` arrivals
  (Poisson), each rising over 30 s to ``spike`` x the base and decaying exponentially
  with a time constant drawn between 2 and 10 minutes;
* ``growing`` — diurnal traffic whose level grows geometrically by ``growth`` x over the
  whole duration.

Loaders: request-timestamp CSVs (a column of ISO-8601 timestamps or unix seconds, like
the Azure LLM traces), rate CSVs (``timestamp`` + ``requests_per_second``, the
``servingopt plan --history`` format), and per-container QPS samples that must be
summed per time window (the Alibaba GenAI trace: ``timestamp_anon``, ``value``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAY = 86400
MAX_SECONDS = 366 * DAY  # a year at one-second resolution: about 250 MB per array


def check_length(seconds: float, what: str = "the trace") -> None:
    """Refuse replays longer than MAX_SECONDS (or NaN) before arrays are allocated."""
    if not seconds <= MAX_SECONDS:
        raise ValueError(
            f"{what} would last {seconds / DAY:.4g} days; at most {MAX_SECONDS // DAY} can be "
            "replayed"
        )


@dataclass(frozen=True, eq=False)
class Trace:
    """Per-second demand: ``rates[i]`` requests/s during second ``i`` of the replay."""

    name: str
    rates: FloatArray
    counts: IntArray | None = None
    """Exact arrivals per second, when the trace came from request timestamps."""
    description: str = ""

    def __post_init__(self) -> None:
        if self.rates.ndim != 1 or self.rates.size == 0:
            raise ValueError("a trace needs at least one second of rates")
        if not np.all(np.isfinite(self.rates)) or np.any(self.rates < 0):
            raise ValueError("rates must be finite and >= 0")
        if self.counts is not None and self.counts.shape != self.rates.shape:
            raise ValueError("counts and rates must have the same length")

    @property
    def seconds(self) -> int:
        return int(self.rates.size)

    @property
    def mean_rps(self) -> float:
        return float(self.rates.mean())

    @property
    def peak_rps(self) -> float:
        """Peak of the per-minute mean rate (what capacity is planned against)."""
        return float(per_interval_mean(self.rates, 60).max())

    def arrivals(self, rng: np.random.Generator) -> IntArray:
        """Requests arriving in each second: the exact counts, or Poisson around the rate."""
        if self.counts is not None:
            return self.counts.copy()
        return np.asarray(rng.poisson(self.rates), dtype=np.int64)

    def scaled(self, factor: float) -> Trace:
        """Every rate multiplied by ``factor`` (exact counts are dropped)."""
        if not (factor > 0 and math.isfinite(factor)):
            raise ValueError("scale factor must be a finite number > 0")
        return replace(self, rates=self.rates * factor, counts=None)

    def scaled_to_peak(self, peak_rps: float) -> Trace:
        """Rescaled so that the per-minute peak equals ``peak_rps``."""
        return self.scaled(peak_rps / max(self.peak_rps, 1e-12))

    def stretched(self, factor: float) -> Trace:
        """Time stretched by ``factor`` (2: events last twice as long), linear resampling."""
        if not (factor > 0 and math.isfinite(factor)):
            raise ValueError("stretch factor must be a finite number > 0")
        check_length(self.seconds * factor, "the stretched trace")
        n = max(1, round(self.seconds * factor))
        src = (np.arange(n) + 0.5) / factor - 0.5
        rates = np.interp(src, np.arange(self.seconds), self.rates)
        return replace(self, rates=rates, counts=None)

    def truncated(self, seconds: int) -> Trace:
        """The first ``seconds`` seconds (tiled when the trace is shorter)."""
        reps = -(-seconds // self.seconds)
        rates = np.tile(self.rates, reps)[:seconds]
        counts = None if self.counts is None else np.tile(self.counts, reps)[:seconds]
        return replace(self, rates=rates, counts=counts)


def per_interval_mean(values: npt.ArrayLike, interval: int) -> FloatArray:
    """Mean over consecutive windows of ``interval`` samples (last window may be short)."""
    v = np.asarray(values, dtype=np.float64)
    n = -(-v.size // interval)
    padded = np.zeros(n * interval)
    padded[: v.size] = v
    sums = padded.reshape(n, interval).sum(axis=1)
    sizes = np.full(n, float(interval))
    sizes[-1] = v.size - (n - 1) * interval
    return np.asarray(sums / sizes, dtype=np.float64)


# ---------------------------------------------------------------------- generators


def _wobble(rng: np.random.Generator, seconds: int, scale_s: float = 900.0) -> FloatArray:
    """A smooth zero-mean random signal of unit standard deviation (AR(1) on minutes)."""
    minutes = seconds // 60 + 2
    phi = math.exp(-60.0 / scale_s)
    shocks = rng.normal(0.0, math.sqrt(1 - phi * phi), minutes)
    x = np.empty(minutes)
    x[0] = rng.normal()
    for i in range(1, minutes):
        x[i] = phi * x[i - 1] + shocks[i]
    return np.interp(np.arange(seconds) / 60.0, np.arange(minutes), x)


def _noise_factor(rng: np.random.Generator, seconds: int, noise: float) -> FloatArray:
    """Multiplicative noise ``1 + noise * wobble``, floored at 0 so rates stay non-negative."""
    return np.maximum(1.0 + noise * _wobble(rng, seconds), 0.0)


def _day_shape(seconds: int, ratio: float, start_hour: float = 0.0) -> FloatArray:
    """1 at 14:00, 1/ratio at 02:00, sinusoidal in between."""
    hours = (np.arange(seconds) / 3600.0 + start_hour) % 24.0
    wave = 0.5 * (1.0 + np.cos(2 * np.pi * (hours - 14.0) / 24.0))
    trough = 1.0 / ratio
    return np.asarray(trough + (1.0 - trough) * wave, dtype=np.float64)


def steady(seconds: int = DAY, *, mean: float = 100.0, noise: float = 0.0, seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    rates = mean * _noise_factor(rng, seconds, noise)
    return Trace("steady", rates, description=f"steady {mean:g} req/s")


def diurnal(
    seconds: int = DAY,
    *,
    peak: float = 100.0,
    ratio: float = 5.0,
    noise: float = 0.05,
    seed: int = 0,
) -> Trace:
    rng = np.random.default_rng(seed)
    rates = peak * _day_shape(seconds, ratio) * _noise_factor(rng, seconds, noise)
    return Trace("diurnal", rates, description=f"diurnal, peak {peak:g} req/s, {ratio:g}:1")


def weekly(
    seconds: int = 7 * DAY,
    *,
    peak: float = 100.0,
    ratio: float = 5.0,
    weekend: float = 0.6,
    noise: float = 0.05,
    seed: int = 0,
) -> Trace:
    rng = np.random.default_rng(seed)
    day_index = (np.arange(seconds) // DAY) % 7
    level = np.where(day_index >= 5, weekend, 1.0)
    shape = _day_shape(seconds, ratio)
    rates = peak * shape * level * _noise_factor(rng, seconds, noise)
    return Trace("weekly", rates, description=f"weekly, weekday peak {peak:g} req/s")


def spiky(
    seconds: int = DAY,
    *,
    base: float = 40.0,
    spike: float = 4.0,
    spikes_per_day: float = 6.0,
    ratio: float = 2.0,
    seed: int = 0,
) -> Trace:
    rng = np.random.default_rng(seed)
    rates = base * _day_shape(seconds, ratio) * _noise_factor(rng, seconds, 0.05)
    t = np.arange(seconds, dtype=np.float64)
    n_spikes = max(1, int(rng.poisson(spikes_per_day * seconds / DAY)))
    boost = np.zeros(seconds)
    for start in rng.uniform(0, seconds * 0.95, n_spikes):
        tau = rng.uniform(120.0, 600.0)
        rise = np.clip((t - start) / 30.0, 0.0, 1.0)
        decay = np.exp(-np.maximum(t - start - 30.0, 0.0) / tau)
        boost = np.maximum(boost, (spike - 1.0) * rise * decay)
    return Trace("spiky", rates * (1.0 + boost), description=f"flash crowds x{spike:g}")


def growing(
    seconds: int = 7 * DAY,
    *,
    peak: float = 100.0,
    growth: float = 2.0,
    ratio: float = 4.0,
    seed: int = 0,
) -> Trace:
    """Diurnal traffic growing geometrically to ``growth`` x by the end (``peak`` at the end)."""
    rng = np.random.default_rng(seed)
    trend = growth ** (np.arange(seconds) / max(seconds - 1, 1) - 1.0)
    rates = peak * trend * _day_shape(seconds, ratio)
    rates *= _noise_factor(rng, seconds, 0.05)
    return Trace("growing", rates, description=f"diurnal growing x{growth:g}")


GENERATORS: dict[str, Callable[..., Trace]] = {
    "steady": steady,
    "diurnal": diurnal,
    "weekly": weekly,
    "spiky": spiky,
    "growing": growing,
}


def generate(spec: str, *, seconds: int | None = None, seed: int = 0) -> Trace:
    """A generator named with optional parameters: ``diurnal`` or ``spiky:spike=6,base=20``."""
    name, _, params = spec.partition(":")
    if name not in GENERATORS:
        raise ValueError(f"unknown trace generator {name!r}; known: {', '.join(GENERATORS)}")
    kwargs: dict[str, float] = {}
    for item in filter(None, params.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"generator parameter {item!r} must be key=value")
        kwargs[key.strip()] = float(value)
    if seconds is not None:
        kwargs["seconds"] = seconds
    if "seconds" in kwargs:
        check_length(kwargs["seconds"])
        kwargs["seconds"] = int(kwargs["seconds"])
    try:
        trace = GENERATORS[name](seed=seed, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad parameters for {name}: {error}") from None
    return trace


# ---------------------------------------------------------------------- loaders


def parse_time(value: str) -> float:
    """Unix seconds from unix seconds or an ISO-8601 timestamp (naive = UTC)."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    iso = text.replace("Z", "+00:00").replace(" ", "T", 1)
    if "." in iso:  # Python < 3.12 only takes up to 6 fractional digits
        head, _, frac = iso.partition(".")
        digits = "".join(c for c in frac if c.isdigit())
        rest = frac[len(digits) :]
        iso = f"{head}.{digits[:6]}{rest}"
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        return (moment - datetime(1970, 1, 1)).total_seconds()
    return moment.timestamp()


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def from_timestamps(times_s: npt.ArrayLike, name: str = "timestamps") -> Trace:
    """Per-second counts (exact arrivals) from request times in seconds."""
    t = np.sort(np.asarray(times_s, dtype=np.float64))
    if t.size == 0:
        raise ValueError("no request timestamps")
    check_length(t[-1] - t[0] + 1)
    seconds = int(t[-1] - t[0]) + 1
    counts = np.bincount((t - t[0]).astype(np.int64), minlength=seconds).astype(np.int64)
    return Trace(name, counts.astype(np.float64), counts=counts, description=f"{t.size} requests")


def from_rates(times_s: npt.ArrayLike, rates: npt.ArrayLike, name: str = "rates") -> Trace:
    """Per-second rates from (time, rate) samples: each rate holds until the next sample."""
    t = np.asarray(times_s, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, r = t[order], r[order]
    if t.size == 0:
        raise ValueError("no rate samples")
    step = float(np.median(np.diff(t))) if t.size > 1 else 60.0
    check_length(t[-1] - t[0] + step)
    seconds = max(1, round(t[-1] - t[0] + step))
    index = np.searchsorted(t - t[0], np.arange(seconds), side="right") - 1
    return Trace(name, np.maximum(r[np.clip(index, 0, t.size - 1)], 0.0))


def load(path: Path) -> Trace:
    """Load a trace CSV, recognising its kind from the header.

    * ``timestamp_anon`` + ``value``: per-container QPS samples, summed per timestamp;
    * ``requests_per_second`` (+ ``timestamp``): a rate per row;
    * otherwise the first column holding timestamps is read as one request per row.
    """
    fields, rows = _rows(path)
    lowered = {f.lower(): f for f in fields}
    name = path.stem
    if "timestamp_anon" in lowered and "value" in lowered:
        sums: dict[float, float] = {}
        for row in rows:
            key = float(row[lowered["timestamp_anon"]])
            sums[key] = sums.get(key, 0.0) + float(row[lowered["value"]] or 0.0)
        times = sorted(sums)
        return from_rates(times, [sums[k] for k in times], name)
    rate_col = lowered.get("requests_per_second") or lowered.get("rate") or lowered.get("rps")
    time_col = lowered.get("timestamp") or lowered.get("time") or (fields[0] if fields else None)
    if time_col is None:
        raise ValueError(f"{path}: no columns")
    if rate_col:
        pairs = [(parse_time(r[time_col]), float(r[rate_col])) for r in rows]
        return from_rates([p[0] for p in pairs], [p[1] for p in pairs], name)
    times = [parse_time(r[time_col]) for r in rows]
    if _is_time(time_col):  # no header: the first line is a request too
        times.append(parse_time(time_col))
    return from_timestamps(times, name)


def _is_time(text: str) -> bool:
    try:
        parse_time(text)
    except ValueError:
        return False
    return True


def resolve(spec: str, *, seconds: int | None = None, seed: int = 0) -> Trace:
    """A trace from a CSV path or a generator spec (see :func:`generate`)."""
    path = Path(spec)
    if path.suffix.lower() == ".csv" or path.exists():
        trace = load(path)
        return trace.truncated(seconds) if seconds else trace
    return generate(spec, seconds=seconds, seed=seed)
