"""Every relative link in README.md, docs/*.md and benchmarks/README.md leads to a file that exists and, with a
#fragment, to a heading of that file, so that moving a page or renaming a section cannot leave a dead link."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
# [text](target) and ![alt](target); a target has no spaces (an optional "title" after it is ignored).
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text):
    """The text outside fenced code blocks and code spans, where a [x](y) is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(path):
    """The fragments GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens,
    and -1, -2, ... on repeats."""
    seen = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def relative_links(page):
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):
            yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page):
    dead = []
    for target in relative_links(page):
        file_part, _, fragment = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            dead.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif fragment and (linked.suffix != ".md" or fragment not in anchors(linked)):
            dead.append(f"{target}: no heading #{fragment} in {linked.relative_to(ROOT)}")
    assert not dead, f"dead links in {page.relative_to(ROOT)}:\n" + "\n".join(dead)


def test_the_checker_sees_links():
    """The check above would pass on a page whose links it failed to parse: make sure it finds them."""
    readme_links = list(relative_links(ROOT / "README.md"))
    assert "docs/training.md#pretrained-weights" in readme_links
    assert "docs/screenshots/trial-phone.png" in readme_links
    assert "mturk-legacy" in anchors(ROOT / "docs" / "deployment.md")
    assert "calibration-calibrationpy" in anchors(ROOT / "benchmarks" / "README.md")
