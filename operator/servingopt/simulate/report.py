"""A self-contained HTML report of a comparison: inline SVG charts, no scripts, no network."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .compare import POLICY_LABELS, Comparison
from .oracle import INTERVAL_SECONDS

COLORS = {
    "static": "#8c564b",
    "hpa": "#1f77b4",
    "threshold": "#9467bd",
    "offline": "#ff7f0e",
    "servingopt": "#2ca02c",
    "oracle": "#555555",
    "demand": "#111111",
}
_WIDTH, _HEIGHT = 920, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 200, 28, 36
_MAX_POINTS = 720
ZOOM_RATIO = 5.0


@dataclass(frozen=True)
class Line:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    dash: str = ""
    step: bool = False


def _downsample(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most ~_MAX_POINTS points: bin means (keeps the shape, drops pixel noise)."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.size <= _MAX_POINTS:
        return x.tolist(), y.tolist()
    edges = np.linspace(0, x.size, _MAX_POINTS + 1).astype(int)
    xb = [float(x[a:b].mean()) for a, b in itertools.pairwise(edges) if b > a]
    yb = [float(np.nanmax(y[a:b])) for a, b in itertools.pairwise(edges) if b > a]
    return xb, yb


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * step:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}" if abs(v) >= 0.01 else f"{v:.1e}"


def chart(
    title: str,
    lines: Sequence[Line],
    y_label: str,
    *,
    hlines: Sequence[tuple[float, str, str]] = (),
    y_max: float | None = None,
) -> str:
    """An SVG line chart; x in hours."""
    w = _WIDTH - _LEFT - _RIGHT
    h = _HEIGHT - _TOP - _BOTTOM
    prepared = [(line, *_downsample(line.xs, line.ys)) for line in lines if len(line.xs)]
    xs_all = [x for _, xs, _ in prepared for x in xs] or [0.0, 1.0]
    ys_all = [y for _, _, ys in prepared for y in ys if math.isfinite(y)] or [0.0, 1.0]
    x0, x1 = min(xs_all), max(xs_all) or 1.0
    top = max([*ys_all, *(v for v, _, _ in hlines)]) * 1.08
    if y_max is not None:
        top = min(top, y_max)
    top = top if top > 0 else 1.0

    def px(x: float) -> float:
        return _LEFT + (x - x0) / max(x1 - x0, 1e-9) * w

    def py(y: float) -> float:
        y = min(max(y, 0.0), top)
        return _TOP + h - y / top * h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{html.escape(title)}">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="#fff"/>',
        f'<text x="{_LEFT}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for t in _ticks(0.0, top):
        out.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
            f'stroke="#e5e5e5"/><text x="{_LEFT - 6}" y="{py(t) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{_fmt(t)}</text>'
        )
    for t in _ticks(x0, x1, 8):
        out.append(
            f'<text x="{px(t):.1f}" y="{_TOP + h + 16}" font-size="11" '
            f'text-anchor="middle">{_fmt(t)}</text>'
        )
    out.append(
        f'<text x="{_LEFT + w / 2}" y="{_HEIGHT - 4}" font-size="11" text-anchor="middle">'
        f'hours</text><text x="14" y="{_TOP + h / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {_TOP + h / 2})">{html.escape(y_label)}</text>'
    )
    out.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for value, label, color in hlines:
        out.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + w}" y1="{py(value):.1f}" y2="{py(value):.1f}" '
            f'stroke="{color}" stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{_LEFT + w + 6}" y="{py(value) + 4:.1f}" font-size="11" '
            f'fill="{color}">{html.escape(label)}</text>'
        )
    legend_y = _TOP + 8
    for line, xs, ys in prepared:
        points = []
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            if not math.isfinite(y):
                continue
            if line.step and i:
                points.append(
                    f"{px(x):.1f},{py(ys[i - 1]) if math.isfinite(ys[i - 1]) else py(y):.1f}"
                )
            points.append(f"{px(x):.1f},{py(y):.1f}")
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        out.append(
            f'<polyline fill="none" stroke="{line.color}" stroke-width="1.6"{dash} '
            f'points="{" ".join(points)}"/>'
        )
        out.append(
            f'<line x1="{_LEFT + w + 8}" x2="{_LEFT + w + 26}" y1="{legend_y}" y2="{legend_y}" '
            f'stroke="{line.color}" stroke-width="3"{dash}/><text x="{_LEFT + w + 30}" '
            f'y="{legend_y + 4}" font-size="11">{html.escape(line.name)}</text>'
        )
        legend_y += 16
    out.append("</svg>")
    return "\n".join(out)


PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")  # fmt: skip
_ROW = 26


def _segments(xs: Sequence[float], labels: Sequence[str]) -> list[tuple[float, float, str]]:
    """(start, end, label) for each run of equal labels; a run ends where the next starts."""
    out: list[tuple[float, float, str]] = []
    step = xs[1] - xs[0] if len(xs) > 1 else 1.0 / 60.0
    for x, label in zip(xs, labels, strict=True):
        if out and out[-1][2] == label:
            out[-1] = (out[-1][0], x + step, label)
        else:
            out.append((x, x + step, label))
    return out


def instance_type_of(label: str) -> str:
    """``g5.xlarge`` of ``g5.xlarge/spot<=50% int8 B=8 D=2ms``."""
    return label.split(" ", 1)[0].split("/", 1)[0]


def timeline(title: str, rows: Sequence[tuple[str, Sequence[float], Sequence[str]]]) -> str:
    """One bar per policy across time, coloured by instance type; spot runs are lighter
    and every run's full configuration is its tooltip."""
    w = _WIDTH - _LEFT - _RIGHT
    spans = [(name, _segments(xs, labels)) for name, xs, labels in rows if len(xs)]
    types = sorted({instance_type_of(lb) for _, segs in spans for _, _, lb in segs})
    color = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}
    x0 = min((segs[0][0] for _, segs in spans), default=0.0)
    x1 = max((segs[-1][1] for _, segs in spans), default=1.0)
    height = _TOP + _ROW * len(spans) + _BOTTOM

    def px(x: float) -> float:
        return _LEFT + 110 + (x - x0) / max(x1 - x0, 1e-9) * (w - 110)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<rect width="{_WIDTH}" height="{height}" fill="#fff"/>',
        f'<text x="{_LEFT}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (name, segs) in enumerate(spans):
        y = _TOP + i * _ROW
        out.append(
            f'<text x="{_LEFT + 104}" y="{y + _ROW / 2 + 4:.1f}" font-size="11" '
            f'text-anchor="end">{html.escape(name)}</text>'
        )
        for start, end, label in segs:
            spot = "/spot" in label
            width = max(px(end) - px(start), 0.5)
            out.append(
                f'<rect x="{px(start):.1f}" y="{y + 3}" width="{width:.1f}" '
                f'height="{_ROW - 6}" fill="{color[instance_type_of(label)]}" '
                f'fill-opacity="{0.55 if spot else 1.0}" stroke="#fff" stroke-width="0.5">'
                f"<title>{html.escape(label)} ({start:.2f} to {end:.2f} h)</title></rect>"
            )
    bottom = _TOP + _ROW * len(spans)
    for t in _ticks(x0, x1, 8):
        out.append(
            f'<text x="{px(t):.1f}" y="{bottom + 16}" font-size="11" '
            f'text-anchor="middle">{_fmt(t)}</text>'
        )
    out.append(
        f'<text x="{px((x0 + x1) / 2):.1f}" y="{height - 4}" font-size="11" '
        f'text-anchor="middle">hours</text>'
    )
    legend_y = _TOP + 8
    for name in types:
        out.append(
            f'<rect x="{_LEFT + w + 8}" y="{legend_y - 6}" width="18" height="10" '
            f'fill="{color[name]}"/><text x="{_LEFT + w + 30}" y="{legend_y + 4}" '
            f'font-size="11">{html.escape(name)}</text>'
        )
        legend_y += 16
    if any("/spot" in lb for _, segs in spans for _, _, lb in segs):
        out.append(
            f'<text x="{_LEFT + w + 8}" y="{legend_y + 4}" font-size="11">lighter: spot</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _hours(values: Sequence[float]) -> list[float]:
    return [v / 3600.0 for v in values]


def render(comparison: Comparison) -> str:
    """The report as one HTML document."""
    c = comparison
    slo = c.scenario.slo_ms
    results = c.results
    first = next(iter(results.values()), None)
    demand_x = _hours(first.minutes["t"]) if first else []
    demand_y = first.minutes["rps"] if first else []
    capacity = [Line("demand", demand_x, demand_y, COLORS["demand"])] + [
        Line(
            POLICY_LABELS.get(n, n),
            _hours(r.minutes["t"]),
            r.minutes["capacity_rps"],
            COLORS.get(n, "#777"),
            step=True,
        )
        for n, r in results.items()
    ]
    replicas = [
        Line(
            POLICY_LABELS.get(n, n),
            _hours(r.minutes["t"]),
            r.minutes["replicas"],
            COLORS.get(n, "#777"),
            step=True,
        )
        for n, r in results.items()
    ]
    p99 = [
        Line(
            POLICY_LABELS.get(n, n),
            _hours(r.minutes["t"]),
            [min(v, 8 * slo) for v in r.minutes["p99_ms"]],
            COLORS.get(n, "#777"),
        )
        for n, r in results.items()
    ]
    oracle_cum = np.cumsum(c.oracle.interval_cost).tolist()
    oracle_x = [(i + 1) * INTERVAL_SECONDS / 3600.0 for i in range(len(oracle_cum))]
    cost = [
        Line(
            POLICY_LABELS.get(n, n),
            _hours(r.minutes["t"]),
            r.minutes["cost"],
            COLORS.get(n, "#777"),
        )
        for n, r in results.items()
    ] + [Line(POLICY_LABELS["oracle"], oracle_x, oracle_cum, COLORS["oracle"], dash="4 3")]
    charts = [
        chart("Demand and provisioned capacity at the SLO (ready replicas)", capacity, "req/s"),
        chart("Ready replicas", replicas, "replicas"),
        timeline(
            "Instance type over time (hover a bar for the whole configuration)",
            [
                (POLICY_LABELS.get(n, n), _hours(r.minutes["t"]), r.minute_config)
                for n, r in results.items()
            ],
        ),
        chart(
            "p99 latency per minute (capped at 8x SLO)",
            p99,
            "ms",
            hlines=[(slo, f"SLO {slo:g} ms", "#d62728")],
            y_max=8 * slo,
        ),
        chart("Cumulative cost", cost, c.scenario.catalog.spec.currency),
    ]
    near = [n for n, r in results.items() if r.cost <= ZOOM_RATIO * c.oracle.cost]
    if near and len(near) < len(results):  # the expensive ones flatten the others
        zoom = [line for line in cost if line.name in {POLICY_LABELS.get(n, n) for n in near}]
        zoom.append(cost[-1])
        charts.append(
            chart(
                f"Cumulative cost, policies within {ZOOM_RATIO:g}x of the oracle",
                zoom,
                c.scenario.catalog.spec.currency,
            )
        )
    rows = "\n".join(_row(r) for r in c.summary())
    decisions = "\n".join(
        f"<tr><td>{html.escape(POLICY_LABELS.get(n, n))}</td><td>{t / 3600:.2f} h</td>"
        f"<td>{html.escape(cfg)}</td><td>{html.escape(why)}</td></tr>"
        for n, r in results.items()
        for t, cfg, why in r.decisions
    )
    failures = "".join(
        f"<p class=warn>{html.escape(n)} failed: {html.escape(m)}</p>"
        for n, m in c.failures.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>servingopt simulate: {html.escape(c.scenario.name)} on {html.escape(c.trace.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 12px 0; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.warn {{ color: #b00; }} svg {{ display: block; margin: 16px 0; }}
</style></head><body>
<h1>{html.escape(c.scenario.name)} — {html.escape(c.trace.name)}</h1>
<p>SLO p99 {slo:g} ms · {c.trace.seconds / 3600:.1f} h replayed · mean {c.trace.mean_rps:.1f}
req/s, peak {c.trace.peak_rps:.1f} req/s (per minute) · initial configuration
{html.escape(c.scenario.initial_config().label())} · oracle {c.oracle.cost:.2f}, fluid bound
{c.oracle.fluid_cost:.2f} (best capacity per dollar:
{html.escape(c.oracle.best_config.label())})</p>
{failures}
<table><tr><th>policy</th><th>cost</th><th>x oracle</th><th>within SLO</th><th>p99 ms</th>
<th>replica-hours</th><th>dropped</th><th>spot nodes reclaimed</th><th>configurations</th></tr>
{rows}
</table>
{"".join(charts)}
<h2>Configuration changes</h2>
<table><tr><th>policy</th><th>at</th><th>configuration</th><th>why</th></tr>
{decisions}
</table>
</body></html>
"""


def _row(r: dict[str, object]) -> str:
    p99 = r["p99LatencyMs"]
    return (
        f"<tr><td>{html.escape(str(r['label']))}</td><td>{r['cost']:.2f}</td>"
        f"<td>{r['oracleRatio']}</td><td>{100 * float(r['sloAttainment']):.3f} %</td>"  # type: ignore[arg-type]
        f"<td>{'&gt; grid' if p99 is None else p99}</td><td>{r['replicaHours']}</td>"
        f"<td>{r['droppedRequests']}</td><td>{r['spotInterruptions']}</td>"
        f"<td>{html.escape(', '.join(r['configurations']))}</td></tr>"  # type: ignore[arg-type]
    )
