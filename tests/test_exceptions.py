"""The error tree drawn in ``chfw.exceptions``' docstring is the tree in the code.

Every ``ChfwError`` subclass, wherever it is defined, must appear there under its
parent, marked ``(ValueError)`` when it subclasses ``ValueError`` directly, so the
drawing cannot drift from the code again.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import chfw
from chfw import exceptions
from chfw.exceptions import ChfwError

# Not imported: ``__main__`` runs the CLI; migrations are alembic scripts run by alembic.
_SKIP = re.compile(r"(\.__main__$|^chfw\.store\.migrations(\.|$))")
_LINE = re.compile(r"^    ((?:│   |    )*)[├└]── (\w+)( \(ValueError\))?(?:\s|$)")


def _import_every_module() -> None:
    for module in pkgutil.walk_packages(chfw.__path__, "chfw."):
        if not _SKIP.search(module.name):
            importlib.import_module(module.name)


def _subclasses(cls: type) -> dict[str, type]:
    found: dict[str, type] = {}
    for sub in cls.__subclasses__():
        found[sub.__name__] = sub
        found.update(_subclasses(sub))
    return found


def _drawn() -> list[tuple[str, str, bool]]:
    """(class name, its parent in the drawing, whether it is marked ValueError), in order."""
    doc = exceptions.__doc__ or ""
    lines = doc.split("    ChfwError\n", 1)[1].split("\n\n", 1)[0].splitlines()
    parents = ["ChfwError"]
    drawn: list[tuple[str, str, bool]] = []
    for line in lines:
        match = _LINE.match(line)
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match.group(1)) // 4
        del parents[depth + 1 :]
        drawn.append((match.group(2), parents[depth], match.group(3) is not None))
        parents.append(match.group(2))
    return drawn


def test_every_error_is_drawn_under_its_parent() -> None:
    _import_every_module()
    classes = _subclasses(ChfwError)
    drawn = {name: (parent, value_error) for name, parent, value_error in _drawn()}
    assert len(drawn) == len(_drawn()), "a class drawn twice"
    assert sorted(set(classes) - set(drawn)) == [], "missing from the tree in chfw/exceptions.py"
    assert sorted(set(drawn) - set(classes)) == [], "drawn but not defined"
    for name, cls in classes.items():
        parent = next(base for base in cls.__bases__ if issubclass(base, ChfwError))
        assert drawn[name] == (parent.__name__, ValueError in cls.__bases__), name
