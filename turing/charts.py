"""The report's bar chart of judged-real shares, drawn with matplotlib's Agg canvas (no display, thread-safe)."""

from io import BytesIO

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from colorization.gallery import LITERAL_TEXT
from turing.statistics import REAL, row_label

REAL_COLOUR = "#8c8c8c"
MODEL_COLOUR = "#3b6fb6"


def fooling_rate_chart(summary, title=""):
    """PNG bytes: one bar per summary row (share judged real) with its 95% interval over participants and images."""
    with matplotlib.rc_context(LITERAL_TEXT):
        return _chart(summary, title)


def _chart(summary, title):
    rows = summary[summary["votes"] > 0]
    figure = Figure(figsize=(6.4, 3.8), dpi=120)
    FigureCanvasAgg(figure)
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
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
