"""Number formatting for the staff pages; missing values (None, NaN) show as an em dash."""

import math

from django import template

register = template.Library()
MISSING = "—"


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


@register.filter
def percent(value, digits=1):
    """A share in [0, 1] as a percentage: 0.4587 -> "45.9%"."""
    return MISSING if _missing(value) else f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def interval(low, high):
    """Two shares as a percentage interval: "18.8% – 81.2%"."""
    return MISSING if _missing(low) or _missing(high) else f"{percent(low)} – {percent(high)}"


@register.filter
def decimal(value, digits=2):
    return MISSING if _missing(value) else f"{float(value):.{int(digits)}f}"


@register.filter
def pvalue(value):
    if _missing(value):
        return MISSING
    return "< 0.001" if value < 0.001 else f"{float(value):.3f}"
