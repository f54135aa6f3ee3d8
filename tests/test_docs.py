"""Every relative link in README.md and docs/*.md points to a file that exists, and every
`#anchor` on a Markdown file to one of its headings (GitHub's heading ids)."""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def heading_ids(page: Path) -> set[str]:
    """GitHub's ids: lower case, punctuation but `-` and `_` dropped, spaces made `-`."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page):
    broken = []
    for link in links(page):
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target.relative_to(REPO_ROOT)}")
        elif anchor and target.suffix == ".md" and anchor not in heading_ids(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(REPO_ROOT)}")
    assert broken == [], f"{page.relative_to(REPO_ROOT)}: {broken}"


def test_the_pages_link_to_each_other():
    """Each page under docs/ is reachable from the README."""
    linked = {(REPO_ROOT / link.partition("#")[0]).resolve() for link in links(PAGES[0])}
    assert [page.name for page in PAGES[1:] if page not in linked] == []
