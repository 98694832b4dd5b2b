"""The dashboards' pages come from Jinja2 templates with autoescaping; routes are module-level.

Guards for issue 21 item 4: every value is escaped by the template engine (a hostile pilot
name or description from the database shows as text), every page shares base.html, no module
of chfw.shared.web but svg.py writes markup, no route is defined inside a function, and no function
in the package is longer than 80 lines.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import APIRouter
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.dsp.web import dead_letters, hub_page, overview
from chfw.shared.web.common import base_router
from chfw.shared.web.render import ENV, SECURITY_HEADERS, html_response, macro
from chfw.supplier import dashboard as supplier
from chfw.supplier import pilots
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from chfw.uit import report as uit_report  # adds the kit's report page to the environment
from tests.sim.live import serve
from tests.small_dsp import TRUST
from tests.web.conftest import TOKEN
from tests.web.pages import document

WEB = Path(__file__).resolve().parents[2] / "src" / "chfw" / "web"
HOSTILE = "<script>alert('x')</script>"
MAX_FUNCTION_LINES = 80
#: An HTML or SVG start or end tag as it would appear in markup built by hand.
TAG = re.compile(
    r"</?(html|head|body|div|p|span|a|table|caption|thead|tbody|tr|td|th|form|input|button"
    r"|select|option|label|dl|dt|dd|ul|li|nav|header|main|h[1-6]|figure|figcaption|time|code"
    r"|br|svg|path|line|text|rect|circle|title|desc|script|link|meta)[\s/>]"
)


#: Pages written to a file, not served: self-contained, so they cannot share base.html's assets.
STANDALONE = {uit_report.TEMPLATE}


def pages() -> list[str]:
    return [name for name in ENV.list_templates() if not name.startswith("_")]


class TestEnvironment:
    """One environment, autoescaping every template; every page in the base layout."""

    def test_autoescape_is_on_for_every_template(self) -> None:
        assert callable(ENV.autoescape)
        assert all(ENV.autoescape(name) for name in ENV.list_templates())
        assert ENV.autoescape(None)  # templates from strings too

    def test_every_page_extends_the_base_layout(self) -> None:
        assert set(pages()) >= {"login.html", "overview.html", "hub.html", "supplier.html"}
        assert "dead_letters.html" in pages()
        for name in pages():
            if name == "base.html" or name in STANDALONE:
                continue
            source = ENV.loader.get_source(ENV, name)[0] if ENV.loader else ""
            assert '{% extends "base.html" %}' in source, name

    def test_a_value_is_escaped_not_interpreted(self) -> None:
        answer = html_response(
            "login.html",
            401,
            app_title="t",
            base="/dashboard",
            nav=(),
            active="",
            csrf=None,
            actor=None,
            live_url=None,
            error=HOSTILE,
            hint="<b>hint</b>",
        )
        body = bytes(answer.body).decode()
        assert HOSTILE not in body
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
        assert "&lt;b&gt;hint&lt;/b&gt;" in body
        assert answer.status_code == 401
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value

    def test_a_macro_renders_on_its_own(self) -> None:
        line = macro("signing_line", overview.SigningStatus(f"issuer {HOSTILE}", warning=True))
        assert HOSTILE not in line
        assert 'class="error" role="alert" id="signing-certificate"' in line


class TestHostileDatabaseValues:
    """A pilot's description is the supplier's own text: shown, never run."""

    def test_supplier_page(self, supplier_engine: Engine) -> None:
        name, description = "wave-1", HOSTILE
        with supplier_engine.begin() as conn:
            pilots.create_pilot(
                conn,
                name,
                FirmwareVersion.parse("02010300"),
                [DeviceId.parse("00-1D-A1-00-00-00-00-01")],
                datetime.now(UTC),
                description=description,
            )
        app = create_receiver_app(
            ReceiverConfig(trust=TRUST), supplier_engine, dashboard_token=TOKEN
        )
        with serve(app) as base, httpx.Client(base_url=base) as client:
            assert client.post("/dashboard/login", data={"token": TOKEN}).status_code == 303
            page = client.get("/dashboard/")
        assert page.status_code == 200
        assert HOSTILE not in page.text
        root = document(page.text)
        assert not root.xpath("//main//script")
        assert root.xpath("//h2/text()")[0] == f"Pilot {name}"
        assert root.xpath("//p[@class='hint']/text()")[0] == description
        assert root.xpath("//option[@selected]/@value") == [name]


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


class TestStructure:
    """Routes at module level, markup in templates (charts in svg.py), short functions."""

    def test_routers_are_module_level(self) -> None:
        for router in (base_router, overview.router, hub_page.router, dead_letters.router):
            assert isinstance(router, APIRouter)
        assert isinstance(supplier.router, APIRouter)
        for path in sorted(WEB.glob("*.py")):
            tree = ast.parse(path.read_text())
            for function in _functions(tree):
                inner = [f for f in _functions(function) if f is not function]
                routes = [f.name for f in inner if f.decorator_list]
                assert not routes, f"{path.name}: {function.name} defines routes {routes}"

    def test_only_svg_py_writes_markup(self) -> None:
        for path in sorted(WEB.glob("*.py")):
            if path.name == "svg.py":
                continue
            tree = ast.parse(path.read_text())
            docstrings = _docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if id(node) in docstrings or path.name == "assets.py":
                        continue  # assets.py: the stylesheet and script, served as files
                    assert not TAG.search(node.value), f"{path.name}:{node.lineno} writes markup"

    def test_functions_are_short(self) -> None:
        for path in sorted(WEB.glob("*.py")):
            for function in _functions(ast.parse(path.read_text())):
                assert function.end_lineno is not None
                lines = function.end_lineno - function.lineno + 1
                assert lines <= MAX_FUNCTION_LINES, f"{path.name}: {function.name} has {lines}"
