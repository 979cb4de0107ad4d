"""The report's sections (turing.report.document) as plain text, for manage.py study_report: the same tables,
paragraphs and notes as the staff page, without its images and charts."""

import html
import textwrap

from django.utils.html import strip_tags

from turing.sections import NUM, Mark, Section

WIDTH = 110


def paragraph(markup):
    """A paragraph of the page's HTML as wrapped plain text."""
    return textwrap.fill(" ".join(html.unescape(strip_tags(markup)).split()), WIDTH)


def cell_text(cell):
    if isinstance(cell, Mark):
        if cell.kind == "bar":
            return "#" * round(cell.width / 5)
        if cell.kind == "items":
            return "; ".join(f"{key}: {value}" for key, value in cell.items)
        return cell.text + cell.after
    return "—" if cell is None else str(cell)


def _thumbnail(cell):
    return isinstance(cell, Mark) and cell.kind == "image"


def table(section: Section) -> list[str]:
    """The section's rows under their column titles, numbers right-aligned; thumbnails left out (their image
    token is in a column of its own)."""
    shown = [i for i in range(len(section.columns)) if not all(_thumbnail(row[i]) for row in section.rows)]
    columns = [section.columns[i] for i in shown]
    rows = [[cell_text(row[i]) for i in shown] for row in section.rows]
    if any(column.title for column in columns):
        rows.insert(0, ["" if column.title_hidden else column.title for column in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return [
        "  ".join(
            text.rjust(width) if column.style == NUM else text.ljust(width)
            for text, width, column in zip(row, widths, columns)
        ).rstrip()
        for row in rows
    ]


def render(sections: list[Section]) -> str:
    lines: list[str] = []
    for section in sections:
        if section.title:
            lines += ["", section.title, ("=" if section.level == 2 else "-") * len(section.title)]
        lines += [paragraph(text) for text in [*section.warnings, *section.lead]]
        if section.folded:
            lines.append(section.folded + ":")
        if section.rows:
            lines += table(section)
        elif section.empty:
            lines.append(section.empty)
        lines += [paragraph(note) for note in section.notes]
    return "\n".join(lines)
