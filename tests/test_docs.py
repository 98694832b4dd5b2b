"""Citations of the documentation cannot rot.

The code cites the project's own pages (``docs/<page>.md``), and the domain
facts by section (``docs/domain.md, "Signing"``). These tests fail when a file
cites a page that does not exist, a section of docs/domain.md that has no
heading of that name, or the team's internal notes outside the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
SOURCE = REPO_ROOT / "src" / "chfw"

# Spelt in two parts so that this file does not cite it.
OUTSIDE_NOTES = "DOMAIN" + ".md"
DOC_CITATION = re.compile(r"docs/([A-Za-z0-9_-]+\.md)")
DOMAIN_SECTION = re.compile(r'docs/domain\.md,\s*(?:section\s+)?"([^"]+)"')
MARKDOWN_LINK = re.compile(r"\]\((?!https?:|#)([^)#\s]+\.md)(?:#[^)]*)?\)")


def _text_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        yield path


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _cited_by_project() -> Iterator[Path]:
    """Every file that may cite the docs: source, tests, benchmarks, docs, README."""
    for folder in (SOURCE, REPO_ROOT / "tests", REPO_ROOT / "bench", DOCS):
        yield from _text_files(folder)
    yield REPO_ROOT / "README.md"


def _headings(page: Path) -> set[str]:
    return {
        line.lstrip("#").strip() for line in _read(page).splitlines() if re.match(r"#{1,6} ", line)
    }


def test_domain_page_exists() -> None:
    assert (DOCS / "domain.md").is_file()


def test_nothing_cites_notes_outside_the_repository() -> None:
    citing = [
        str(path.relative_to(REPO_ROOT))
        for path in _cited_by_project()
        if OUTSIDE_NOTES in _read(path)
    ]
    assert citing == [], f"cite docs/domain.md instead of {OUTSIDE_NOTES} in: {citing}"


def test_source_cites_only_pages_that_exist() -> None:
    missing = [
        f"{path.relative_to(REPO_ROOT)}: docs/{page}"
        for path in _text_files(SOURCE)
        for page in DOC_CITATION.findall(_read(path))
        if not (DOCS / page).is_file()
    ]
    assert missing == []


def test_domain_sections_cited_exist() -> None:
    headings = _headings(DOCS / "domain.md")
    cited = [
        (path, section)
        for path in _cited_by_project()
        for section in DOMAIN_SECTION.findall(_read(path))
    ]
    assert cited, "nothing cites a section of docs/domain.md: has the citation form changed?"
    unknown = [
        f"{path.relative_to(REPO_ROOT)}: {section!r}"
        for path, section in cited
        if section not in headings
    ]
    assert unknown == [], f"no such heading in docs/domain.md: {unknown}"


@pytest.mark.parametrize(
    "page",
    [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))],
    ids=lambda page: page.name,
)
def test_markdown_links_to_pages_that_exist(page: Path) -> None:
    missing = [
        target
        for target in MARKDOWN_LINK.findall(_read(page))
        if not (page.parent / target).resolve().is_file()
    ]
    assert missing == []
