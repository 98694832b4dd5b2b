"""Reading dashboard pages in tests: tables by id, figures by live key."""

from __future__ import annotations

import lxml.html


def document(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(html)


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows of the table with this id, each cell's text with spaces normalised."""
    root = document(html)
    (table,) = root.xpath(f"//table[@id='{table_id}']")
    return [
        [" ".join(cell.text_content().split()) for cell in row.xpath("./th|./td")]
        for row in table.xpath("./tbody/tr")
    ]


def live_text(html: str, key: str) -> str:
    """The text of the (first) element showing the live figure ``key``."""
    root = document(html)
    found = root.xpath(f"//*[@data-live='{key}']")
    assert found, f"no element shows {key}"
    return " ".join(found[0].text_content().split())


def number(text: str) -> int:
    return int(text.replace(",", ""))
