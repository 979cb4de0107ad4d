"""Ids in a page's HTML: which aria-describedby references name no element of the page."""

from html.parser import HTMLParser


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.described_by = set(), []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if attributes.get("aria-describedby") is not None:
            self.described_by.append(
                (tag, attributes.get("name") or attributes.get("id"), attributes["aria-describedby"])
            )


def dangling_describedby(html):
    """(tag, name or id, missing id) for every id an aria-describedby names that no element of ``html`` has;
    and the count of aria-describedby attributes, so that a test can tell none from all resolved."""
    parser = _Ids()
    parser.feed(html)
    missing = [
        (tag, name, reference)
        for tag, name, references in parser.described_by
        for reference in references.split() or [""]
        if reference not in parser.ids
    ]
    return missing, len(parser.described_by)
