"""{{ side|side_words }} and {{ side|side_words:"capital" }}: a 2afc pair's side ("left", "right") named as the
page lays the pair out. turing.protocols.two_afc names the sides with it too, in its feedback."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from turing.vocabulary import LEFT, RIGHT

register = template.Library()

SIDE_WORDS = {LEFT: ("left", "top"), RIGHT: ("right", "bottom")}


@register.filter
def side_words(side: str, capital: bool = False) -> SafeString:
    """The names of a side of the pair as HTML: both words, of which two_afc.css shows (and lets screen readers
    read) only the one that fits the layout on this screen. The server cannot know the layout; the stylesheet,
    which sets it, does."""
    beside, stacked = (word.capitalize() if capital else word for word in SIDE_WORDS[side])
    return format_html('<span class="side-beside">{}</span><span class="side-stacked">{}</span>', beside, stacked)
