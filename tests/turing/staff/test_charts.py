"""The report's charts (turing.staff.charts): the bar chart names its real and model bars in a legend, and the
metrics scatter's text is large enough to read at the size the report shows it."""

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from tests.turing.staff.chart_text import drawn_text_px
from turing.analysis.metric_correlation import METRICS, metric_correlations
from turing.staff import charts

# Smallest text, in CSS px, that the report may show.
MIN_TEXT_PX = 10


def summary(sources):
    rows = [(source, group) for source, group in sources]
    return pd.DataFrame(
        {
            "source": [source for source, _ in rows],
            "group": [group for _, group in rows],
            "votes": 6,
            "rate": 0.5,
            "ci_low": 0.3,
            "ci_high": 0.7,
        }
    )


def legend_of(figure):
    (axes,) = figure.axes
    legend = axes.get_legend()
    return {
        text.get_text(): to_hex(handle.get_facecolor() if hasattr(handle, "get_facecolor") else handle.get_color())
        for text, handle in zip(legend.get_texts(), legend.legend_handles)
    }


def bar_colours(figure):
    (axes,) = figure.axes
    return [to_hex(bar.get_facecolor()) for bar in axes.patches]


def test_the_bar_chart_names_real_and_model_bars_in_a_legend():
    rows = summary([("real", "treatment"), ("real", "control"), ("alpha", "treatment"), ("beta", "treatment")])
    figure = charts.fooling_rate_figure(rows, "Study")
    legend = legend_of(figure)
    assert list(legend) == [charts.REAL_BARS, charts.MODEL_BARS, charts.CHANCE_LINE]
    # Each name's colour is its bars' colour.
    assert bar_colours(figure) == [legend[charts.REAL_BARS]] * 2 + [legend[charts.MODEL_BARS]] * 2


def test_the_legend_names_only_what_the_chart_draws():
    # A 2afc study: no real photo judged on its own, so no real bar.
    assert list(legend_of(charts.fooling_rate_figure(summary([("alpha", "treatment")])))) == [
        charts.MODEL_BARS,
        charts.CHANCE_LINE,
    ]
    empty = summary([("alpha", "treatment")]).assign(votes=0)
    assert list(legend_of(charts.fooling_rate_figure(empty))) == [charts.CHANCE_LINE]


def scatter_inputs():
    rng = np.random.default_rng(0)
    images = pd.DataFrame(
        [
            {
                "stimulus": f"{model}-{i}",
                "scene": f"s{i}",
                "model": model,
                "votes": 10,
                "judged_real": 5,
                "rate": rng.uniform(),
                **{metric: rng.uniform(0, 30) for metric in METRICS},
            }
            for model in ("alpha", "beta")
            for i in range(30)
        ]
    )
    return images, metric_correlations(images, seed=1)


def test_the_metrics_scatters_smallest_text_is_10_px_at_one_image_pixel_per_css_px():
    images, correlations = scatter_inputs()
    with matplotlib.rc_context(charts.LITERAL_TEXT):
        drawn = drawn_text_px(charts.metric_scatter_figure(images, correlations, "Study"))
    # Tick labels, axis labels and panel titles, all measured.
    assert {"100%", "psnr", "alpha\njudged real (per vote)"} <= {text for text, _ in drawn}
    assert min(px for _, px in drawn) >= MIN_TEXT_PX
    png = Image.open(io.BytesIO(charts.metric_scatter_chart(images, correlations, "Study")))
    # Saved at the figure's dpi (the PNG says so), so its pixels are the ones measured above; and narrow enough
    # for the report's column on a 1280 px screen (72rem less its padding: 1104 px), where it is shown unshrunk.
    assert png.info["dpi"] == pytest.approx((charts.SCATTER_DPI, charts.SCATTER_DPI), abs=0.01)
    assert png.width <= 1104
