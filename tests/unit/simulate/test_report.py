"""The report's configuration timeline: runs of one configuration, coloured by type."""

from __future__ import annotations

from servingopt.simulate.report import _segments, instance_type_of, timeline


def test_runs_of_one_configuration_become_one_segment() -> None:
    xs = [0.0, 0.5, 1.0, 1.5]
    labels = ["g5.xlarge fp16 B=8 D=0ms"] * 2 + ["g4dn.xlarge/spot<=50% int8 B=8 D=0ms"] * 2
    assert _segments(xs, labels) == [(0.0, 1.0, labels[0]), (1.0, 2.0, labels[2])]
    assert [instance_type_of(lb) for lb in labels[1:3]] == ["g5.xlarge", "g4dn.xlarge"]


def test_timeline_colours_each_type_and_names_every_configuration() -> None:
    labels = ["a.large fp16 B=1 D=0ms", "b.large/spot int8 B=4 D=1ms"]
    svg = timeline(
        "t", [("(e) servingopt", [0.0, 1.0], labels), ("(a) static", [0.0, 1.0], labels[:1] * 2)]
    )
    assert svg.count("<rect x=") >= 3  # two runs for (e), one for (a)
    assert "a.large fp16 B=1 D=0ms (0.00 to 1.00 h)" in svg and "lighter: spot" in svg
    assert 'fill-opacity="0.55"' in svg  # the spot run
