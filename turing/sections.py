"""What a report is made of: titled sections, each a table (columns, rows of cells) with its notes and figures.
turing.report.document builds the study's report from them, and each protocol (turing.protocols) gives its own;
the staff page (turing/templates/turing/staff/_section.html) and manage.py study_report (turing.report.text)
draw them. Plain data, importing nothing of turing, so that the protocols and the report need not import
each other."""

from dataclasses import dataclass, field

from django.utils.safestring import SafeString

NUM, CI, MUTED = "num", "ci", "muted"


@dataclass(frozen=True)
class Column:
    """A table's column: its heading, how its cells are set (NUM: a number, right-aligned; CI: an interval;
    MUTED: a figure given for comparison; styles combine, space-separated), whether its cells head their rows,
    and whether its title is for screen readers only (a column of bars, whose heading would only repeat what the
    bars show)."""

    title: str
    style: str = ""
    heads_row: bool = False
    title_hidden: bool = False


@dataclass(frozen=True)
class Mark:
    """A cell drawn with more than its text. kind: "strong" (the figure to read), "code" (an identifier, then
    ``after``), "image" (a stimulus token: its thumbnail on the page), "bar" (``width``% of the widest),
    "items" (key: value pairs, one per line on the page)."""

    kind: str
    text: str = ""
    after: str = ""
    width: int = 0
    items: tuple = ()


@dataclass(frozen=True)
class Figure:
    """A chart served at the URL named ``url`` (which takes the study's slug and the report's query). ``full_size``:
    shown at its own size, one image pixel per CSS px, scrolling sideways inside its box where the page is
    narrower (a chart of small panels, whose labels shrunk to a phone's width could not be read); otherwise
    shrunk to the page's width."""

    url: str
    alt: str
    caption: str
    full_size: bool = False


@dataclass
class Section:
    """One titled part of the report: ``lead`` paragraphs, a table (columns, rows of cells: text or Mark; ``empty``
    says why there are none), figures and notes. Paragraphs are HTML (format_html), shown as text by
    turing.report.text. ``level`` 3 continues the section before it; ``folded`` puts the rows under that summary;
    ``name`` is the section's id and the table's class."""

    title: str
    columns: list[Column] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    notes: list[SafeString] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    lead: list[SafeString] = field(default_factory=list)
    warnings: list[SafeString] = field(default_factory=list)
    empty: str = ""
    name: str = ""
    level: int = 2
    folded: str = ""
