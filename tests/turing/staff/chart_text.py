"""The text a matplotlib figure draws, measured in pixels of the PNG it saves."""

from matplotlib.text import Text


def drawn_text_px(figure):
    """Every drawn text of ``figure`` with its font size in pixels at the figure's dpi (a point is dpi / 72
    pixels), as (text, px) pairs."""
    figure.canvas.draw()
    return {
        (text.get_text(), text.get_fontsize() * figure.dpi / 72)
        for text in figure.findobj(Text)
        if text.get_visible() and text.get_text().strip()
    }
