"""The report's charts, drawn with matplotlib's Agg canvas (no display, thread-safe): the bar chart of
judged-real shares, and the scatter plots of fooling rate against each colorization metric."""

from io import BytesIO

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from colorization.gallery import LITERAL_TEXT
from turing.analysis.metric_correlation import METRICS
from turing.analysis.statistics import row_label
from turing.vocabulary import REAL

REAL_COLOUR = "#8c8c8c"
MODEL_COLOUR = "#3b6fb6"
# The legend's names of the bar chart's bars and line.
REAL_BARS, MODEL_BARS, CHANCE_LINE = "real photos", "a model's images (its fooling rate)", "50%"
# The bar chart's margins, as fractions of the figure: room for the axis label, two lines of bar labels, and the
# title and legend above the bars (a legend among them would hide one reaching 100%). Fixed, so that the figure
# is drawn once (bbox_inches="tight" draws it twice to measure it).
BAR_MARGINS = {"left": 0.12, "right": 0.98, "top": 0.8, "bottom": 0.17}
# The metrics scatter: one panel per metric and model, and its text. The report shows the PNG at its own size,
# one image pixel per CSS px (Figure.full_size: scrolling sideways inside its box on a narrower screen), where a
# point of text is SCATTER_DPI / 72 px: 8 pt is 11 px, above the 10 px a label needs to be read. Five panels
# 2.1 inches wide make about 1060 px, inside the report's column on a 1280 px screen.
PANEL_INCHES = (2.1, 2.2)
SCATTER_DPI = 100
SCATTER_TEXT_PT = 8


def fooling_rate_chart(summary, title=""):
    """PNG bytes of fooling_rate_figure."""
    with matplotlib.rc_context(LITERAL_TEXT):
        return _png(fooling_rate_figure(summary, title))


def fooling_rate_figure(summary, title=""):
    """One bar per summary row (the per-vote share judged real) with its 95% interval over participants and
    images, real photos and models' images told apart in a legend. Build inside rc_context(LITERAL_TEXT)."""
    rows = summary[summary["votes"] > 0]
    figure = Figure(figsize=(6.4, 3.8), dpi=120)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(**BAR_MARGINS)
    axes = figure.add_subplot()
    legend = []
    if rows.empty:
        axes.text(0.5, 0.5, "No votes yet", ha="center", va="center", transform=axes.transAxes)
    else:
        rates = rows["rate"].to_numpy(dtype=float)
        # An undefined interval (NaN) draws no error bar.
        below = (rates - rows["ci_low"].to_numpy(dtype=float)).clip(min=0)
        above = (rows["ci_high"].to_numpy(dtype=float) - rates).clip(min=0)
        real = (rows["source"] == REAL).to_numpy()
        labels = [row_label(source, group) for source, group in zip(rows["source"], rows["group"])]
        positions = range(len(rows))
        axes.bar(positions, rates, yerr=[below, above], capsize=5, color=np.where(real, REAL_COLOUR, MODEL_COLOUR))
        axes.set_xticks(list(positions), [f"{label}\nn={votes}" for label, votes in zip(labels, rows["votes"])])
        # Only what is drawn: a 2afc study has no real rows.
        legend += [Patch(color=REAL_COLOUR, label=REAL_BARS)] if real.any() else []
        legend += [Patch(color=MODEL_COLOUR, label=MODEL_BARS)] if not real.all() else []
    axes.axhline(0.5, linestyle="--", color="0.4", linewidth=1)
    legend.append(Line2D([], [], linestyle="--", color="0.4", linewidth=1, label=CHANCE_LINE))
    axes.legend(handles=legend, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(legend), frameon=False)
    axes.set_ylim(0, 1)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel("judged real (per vote)")
    figure.suptitle(title)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def metric_scatter_chart(images, correlations, title=""):
    """PNG bytes of metric_scatter_figure."""
    with matplotlib.rc_context(LITERAL_TEXT):
        return _png(metric_scatter_figure(images, correlations, title), bbox_inches="tight")


def metric_scatter_figure(images, correlations, title=""):
    """A row of panels per model with votes, one per metric (turing.analysis.metric_correlation): each judged
    image is a point, its metric against its fooling rate, and the panel's title gives ρ, its interval and n,
    or why there is none. Build inside rc_context(LITERAL_TEXT)."""
    models = list(dict.fromkeys(correlations["model"]))
    rows = max(len(models), 1)
    figure = Figure(
        figsize=(PANEL_INCHES[0] * len(METRICS), PANEL_INCHES[1] * rows + 0.6), dpi=SCATTER_DPI, layout="constrained"
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
            axes.set_title(_panel_title(row, len(judged) - len(shown)), fontsize=SCATTER_TEXT_PT)
            axes.set_xlabel(metric, fontsize=SCATTER_TEXT_PT)
            axes.set_ylim(-0.03, 1.03)
            axes.yaxis.set_major_formatter(PercentFormatter(1.0))
            axes.tick_params(labelsize=SCATTER_TEXT_PT)
            axes.spines[["top", "right"]].set_visible(False)
        axes_row[0].set_ylabel(f"{model}\njudged real (per vote)", fontsize=SCATTER_TEXT_PT)
    figure.suptitle(title)
    return figure


def _png(figure, **options):
    buffer = BytesIO()
    figure.savefig(buffer, format="png", **options)
    return buffer.getvalue()


def _panel_title(row, not_drawn):
    if np.isnan(row["rho"]):
        text = f"n = {row['images']}: no ρ"
    elif np.isnan(row["ci_low"]):
        text = f"ρ = {row['rho']:.2f}, no interval, n = {row['images']}"
    else:
        text = f"ρ = {row['rho']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}], n = {row['images']}"
    return text + (f"\n({not_drawn} identical to the photo not drawn)" if not_drawn else "")
