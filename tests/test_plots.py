"""Figures read from their matplotlib objects: series and legends, labels and units, ticks, titles, the front."""

from __future__ import annotations

import pytest

import axq
from axq import plots
from axq.progress import Reporter
from axq.sweeps import rows_notes

QUIET = Reporter("quiet")


def drawn(fig):
    """Draw a figure (ticks and layout are settled on drawing) and return it."""
    fig.canvas.draw()
    return fig


def test_a_two_parameter_sweep_draws_one_series_per_value_of_the_second(work):
    query = "explored,mode=performance,framework:=alpha:beta,batch_size:=1:2:4:8"
    rows = axq.sweep(query, ["performance"], reporter=QUIET)
    ax = plots.sweep_figure(rows, ["framework", "batch_size"], ["performance"], query, rows_notes(rows)).axes[0]
    series = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in series] == ["1", "2", "4", "8"]
    assert all(list(line.get_xdata()) == [0.0, 1.0] for line in series)  # alpha and beta, not a zig-zag
    assert list(series[0].get_ydata()) == [100.0, 150.0]  # batch 1: alpha, beta
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "batch_size"
    assert [t.get_text() for t in legend.get_texts()] == ["1", "2", "4", "8"]


def test_invalid_points_are_crossed_and_in_the_legend(work):
    query = "verdict,latency:=1000:3000:8000"
    rows = axq.sweep(query, ["latency_ns"], reporter=QUIET)
    ax = plots.sweep_figure(rows, ["latency"], ["latency_ns"], query, rows_notes(rows)).axes[0]
    crosses = [c for c in ax.collections if c.get_label() == "INVALID run"]
    assert len(crosses) == 1 and len(crosses[0].get_offsets()) == 1  # 8000 ns is above the 5000 ns bound
    assert "INVALID run" in [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize(
    ("unit", "values", "name", "label"),
    [
        ("ns", [2e6, 5e6, 9e6], "latency_p99_ns", "latency_p99 (ms)"),  # no `_ns (ms)`
        ("ns", [1000, 3000, 8000], "latency_ns", "latency (µs)"),  # the unit that suits the figures
        ("ms", [100.0], "latency_bound_ms", "latency_bound (ms)"),
        ("samples/s", [400.0], "performance", "performance (samples/s)"),
        (None, [1.0], "accuracy", "accuracy"),
    ],
)
def test_axis_labels_say_the_unit_shown_once(unit, values, name, label):
    assert plots.Scale.of(unit, values).label(name) == label


def test_the_subtitle_breaks_after_commas_never_inside_a_condition():
    query = ("loadgen_output,classified_digits,framework:=pytorch:onnxruntime:openvino,batch_size:=1:2:4:8:16:32,"
             "loadgen_mode=PerformanceOnly,loadgen_scenario=Server,loadgen_target_qps=500,precision=fp32")
    lines = plots.wrap_query(query, 60).split("\n")
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines)
    assert "".join(lines) == query  # nothing lost or added
    conditions = set(query.split(","))
    assert all(set(line.rstrip(",").split(",")) <= conditions for line in lines)  # whole conditions only


@pytest.mark.parametrize(("low", "high"),
                         [(10, 20.5), (1, 3), (1, 9), (0.88, 9.06), (1, 30), (0.5, 200), (1, 5000), (0.01, 1e5)])
def test_log_axes_carry_few_enough_labels(low, high):
    fig, ax = plots.pyplot().subplots(figsize=(7, 3))
    ax.plot([0, 1], [low, high])
    plots.plain_numbers(ax, "y", True)
    drawn(fig)
    bottom, top = ax.get_ylim()
    shown = [t for t in ax.get_yticklabels() if t.get_text() and bottom <= t.get_position()[1] <= top]
    assert 3 <= len(shown) <= 8, [t.get_text() for t in shown]
    plots.pyplot().close(fig)


def test_long_category_labels_stay_inside_the_figure(work):
    query = "verdict,framework:=pytorch:onnxruntime:openvino_with_a_long_name,latency:=1000:2000"
    rows = axq.sweep(query, ["latency_ns"], reporter=QUIET)
    fig = drawn(plots.sweep_figure(rows, ["framework", "latency"], ["latency_ns"], query, rows_notes(rows)))
    box = fig.bbox
    labels = [t for t in fig.axes[-1].get_xticklabels() if t.get_text()]
    assert [t.get_text() for t in labels] == ["pytorch", "onnxruntime", "openvino_with_a_long_name"]
    for label in labels:
        extent = label.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label.get_text()
    plots.pyplot().close(fig)
