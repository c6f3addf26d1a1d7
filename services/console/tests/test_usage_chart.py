"""Usage over time: hours bucketed into periods, gaps as zero, bars scaled to the plot."""

from datetime import UTC, datetime

from console.domain.usage_chart import BOTTOM, HEIGHT, TOP, bucket_usage, chart, nice_ceiling

NOW = datetime(2026, 11, 29, 22, 40, tzinfo=UTC)


def test_hours_fill_the_span_with_zeros_oldest_first():
    series, period = bucket_usage([{"hour": "2026-11-29T22:00:00Z", "data_points": 5},
                                   {"hour": "2026-11-29T20:00:00Z", "data_points": 3},
                                   {"hour": "2026-11-01T00:00:00Z", "data_points": 99}], NOW, 4)
    assert period == "hour"
    assert [(t.hour, v) for t, v in series] == [(19, 0), (20, 3), (21, 0), (22, 5)]


def test_longer_spans_are_per_day():
    series, period = bucket_usage([{"hour": "2026-11-29T01:00:00Z", "data_points": 2},
                                   {"hour": "2026-11-29T22:00:00Z", "data_points": 5},
                                   {"hour": "2026-11-27T10:00:00Z", "data_points": 7}], NOW, 24 * 3)
    assert period == "day"
    assert [(t.day, v) for t, v in series] == [(27, 7), (28, 0), (29, 7)]


def test_the_axis_top_is_a_round_number():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 480, 5001)] == [1, 1, 5, 10, 10, 20, 500, 10000]


def test_bars_are_scaled_to_the_plot():
    series, period = bucket_usage([{"hour": "2026-11-29T22:00:00Z", "data_points": 10},
                                   {"hour": "2026-11-29T21:00:00Z", "data_points": 5}], NOW, 2)
    plot = chart(series, period)
    full = HEIGHT - BOTTOM - TOP
    assert plot.top_value == 10 and plot.total == 15
    assert [round(b.height, 3) for b in plot.bars] == [full / 2, full]
    assert plot.bars[1].y == TOP and plot.bars[0].x < plot.bars[1].x
    assert plot.bars[1].label == "29 22:00"
