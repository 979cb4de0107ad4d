"""The rows of a report section's table as HTML, for the staff page's section include
(turing/templates/turing/staff/_section.html), which draws everything else of the section. Written here rather
than cell by cell in the template, where each of a long table's cells costs a dozen variable lookups."""

import re

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from turing.report.cache import cached
from turing.report.data import Selection
from turing.report.document import build_report
from turing.sections import CI, Mark, Section

# An interval, "low – high", kept on one line (staff.css), where other text of an interval column, such as why a
# score has no interval, wraps as any text does: a column kept on one line whatever it says would push a table
# past the screen. A span rather than no-break spaces, which would not hold after the dash (a line may break
# after an en dash whatever follows) and would reach the clipboard of whoever copies the interval.
INTERVAL = re.compile(r"\S+ – \S+")


def _unbroken(text, interval):
    return format_html('<span class="interval">{}</span>', text) if interval and INTERVAL.fullmatch(text) else text


def _content(cell, thumbnail, interval=False):
    if not isinstance(cell, Mark):
        return format_html("{}", "—" if cell is None else _unbroken(str(cell), interval))
    if cell.kind == "strong":
        return format_html("<strong>{}</strong>", _unbroken(cell.text, interval))
    if cell.kind == "code":
        return format_html("<code>{}</code>{}", cell.text, cell.after)
    if cell.kind == "image":
        return format_html(
            '<img class="thumb" src="{}" alt="" loading="lazy">', thumbnail[0] + cell.text + thumbnail[1]
        )
    if cell.kind == "bar":
        return format_html(
            '<svg class="bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">'
            '<rect width="{}" height="1"/></svg>',
            cell.width,
        )
    items = format_html_join("", "<li><strong>{}:</strong> {}</li>", cell.items)
    return format_html('<ul class="plain">{}</ul>', items)


def table_rows(section: Section) -> list[SafeString]:
    """Each row of the section's table as a <tr>: cells of a column that heads its rows as <th scope="row">,
    the others as <td> with the column's style as their class."""
    # One reverse() for every thumbnail: the token (URL-safe base64) is the path's last component.
    thumbnail = reverse("staff:stimulus", args=["~"]).split("~")
    openings = [
        mark_safe('<th scope="row">')
        if column.heads_row
        else format_html('<td class="{}">', column.style)
        if column.style
        else mark_safe("<td>")
        for column in section.columns
    ]
    closings = ["</th>" if column.heads_row else "</td>" for column in section.columns]
    intervals = [CI in column.style.split() for column in section.columns]
    return [
        mark_safe(
            "<tr>"
            + "".join(
                opening + _content(cell, thumbnail, interval) + closing
                for opening, cell, closing, interval in zip(openings, row, closings, intervals)
            )
            + "</tr>"
        )
        for row in section.rows
    ]


def page_sections(study, selection=Selection()):
    """The report's sections, each with its table_rows, as the staff page draws them; cached like the report."""
    return cached("page", study, selection, _page_sections)


def _page_sections(study, selection, version):
    return [(section, table_rows(section)) for section in build_report(study, selection)]
