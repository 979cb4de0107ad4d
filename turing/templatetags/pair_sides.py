"""{{ side|side_words }} and {{ side|side_words:"capital" }}: a 2afc pair's side ("left", "right") named as the
page lays the pair out (turing.protocols.two_afc.side_words)."""

from django import template

from turing.protocols.two_afc import side_words as side_words_html

register = template.Library()


@register.filter
def side_words(side, capital=""):
    return side_words_html(side, capital=bool(capital))
