"""The report's charts, drawn with matplotlib's Agg canvas (no display, thread-safe): the bar chart of
judged-real shares, and the scatter plots of fooling rate against each colorization metric."""

from io import BytesIO

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from colorization.gallery import LITERAL_TEXT
from turing.analysis.metric_correlation import METRICS
from turing.analysis.statistics import row_label
from turing.vocabulary import REAL

REAL_COLOUR = "#8c8c8c"
MODEL_COLOUR = "#3b6fb6"
PANEL_INCHES = (2.4, 2.2)
# The bar chart's margins, as fractions of the figure: room for the axis label, two lines of bar labels and the
# title. Fixed, so that the figure is drawn once (bbox_inches="tight" draws it twice to measure it).
BAR_MARGINS = {"left": 0.12, "right": 0.98, "top": 0.92, "bottom": 0.17}


def fooling_rate_chart(summary, title=""):
    """PNG bytes: one bar per summary row (share judged real) with its 95% interval over participants and images."""
    with matplotlib.rc_context(LITERAL_TEXT):
        return _chart(summary, title)


def _chart(summary, title):
    rows = summary[summary["votes"] > 0]
    figure = Figure(figsize=(6.4, 3.8), dpi=120)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(**BAR_MARGINS)
    axes = figure.add_subplot()
    if rows.empty:
        axes.text(0.5, 0.5, "No votes yet", ha="center", va="center", transform=axes.transAxes)
    else:
        rates = rows["rate"].to_numpy(dtype=float)
        # An undefined interval (NaN) draws no error bar.
        below = (rates - rows["ci_low"].to_numpy(dtype=float)).clip(min=0)
        above = (rows["ci_high"].to_numpy(dtype=float) - rates).clip(min=0)
        colours = [REAL_COLOUR if source == REAL else MODEL_COLOUR for source in rows["source"]]
        labels = [row_label(source, group) for source, group in zip(rows["source"], rows["group"])]
        positions = range(len(rows))
        axes.bar(positions, rates, yerr=[below, above], capsize=5, color=colours)
        axes.set_xticks(list(positions), [f"{label}\nn={votes}" for label, votes in zip(labels, rows["votes"])])
    axes.axhline(0.5, linestyle="--", color="0.4", linewidth=1, label="50%")
    axes.set_ylim(0, 1)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel("judged real")
    # At the top, where matplotlib would put it too: left to place it, it measures the axes' ticks and labels first.
    axes.set_title(title, y=1.0)
    axes.spines[["top", "right"]].set_visible(False)
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def metric_scatter_chart(images, correlations, title=""):
    """PNG bytes: a row of panels per model with votes, one per metric (turing.analysis.metric_correlation): each judged
    image is a point, its metric against its fooling rate, and the panel's title gives ρ, its interval and n,
    or why there is none."""
    with matplotlib.rc_context(LITERAL_TEXT):
        return _scatter(images, correlations, title)


def _scatter(images, correlations, title):
    models = list(dict.fromkeys(correlations["model"]))
    rows = max(len(models), 1)
    figure = Figure(
        figsize=(PANEL_INCHES[0] * len(METRICS), PANEL_INCHES[1] * rows + 0.6), dpi=100, layout="constrained"
    )
    FigureCanvasAgg(figure)
    if not models:
        figure.text(0.5, 0.5, "No votes on measured generated images yet", ha="center", va="center")
    grid = figure.subplots(rows, len(METRICS), squeeze=False, sharey=True) if models else []
    by_model = correlations.set_index(["model", "metric"])
    for axes_row, model in zip(grid, models):
        judged = images[(images["model"] == model) & (images["votes"] > 0)]
        for axes, metric in zip(axes_row, METRICS):
            row = by_model.loc[(model, metric)]
            # An infinite PSNR (an image identical to its photo) has no place on the axis.
            shown = judged[np.isfinite(judged[metric])]
            axes.scatter(shown[metric], shown["rate"], s=14, color=MODEL_COLOUR, alpha=0.7)
            axes.set_title(_panel_title(row, len(judged) - len(shown)), fontsize=8)
            axes.set_xlabel(metric, fontsize=8)
            axes.set_ylim(-0.03, 1.03)
            axes.yaxis.set_major_formatter(PercentFormatter(1.0))
            axes.tick_params(labelsize=7)
            axes.spines[["top", "right"]].set_visible(False)
        axes_row[0].set_ylabel(f"{model}\njudged real", fontsize=8)
    figure.suptitle(title)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _panel_title(row, not_drawn):
    if np.isnan(row["rho"]):
        text = f"n = {row['images']}: no ρ"
    elif np.isnan(row["ci_low"]):
        text = f"ρ = {row['rho']:.2f}, no interval, n = {row['images']}"
    else:
        text = f"ρ = {row['rho']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}], n = {row['images']}"
    return text + (f"\n({not_drawn} identical to the photo not drawn)" if not_drawn else "")
