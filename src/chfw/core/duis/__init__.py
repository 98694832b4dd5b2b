"""DUIS documents for DCC Alerts N64 and N999: render, identify, validate. No I/O.

``render_n64`` / ``render_n999`` return the compact canonical bytes the signer
digests; ``bundled_schemas()`` (chfw's own subset XSD) or
``official_schemas(folder)`` (DCC's files) check them before signing.
"""

from chfw.core.duis.render import SR_NAMESPACE, render_n64, render_n999, response_date_time
from chfw.core.duis.response_id import ResponseId
from chfw.core.duis.schema import (
    Document,
    DocumentValidator,
    SchemaSet,
    bundled_schemas,
    official_schemas,
)

__all__ = [
    "SR_NAMESPACE",
    "Document",
    "DocumentValidator",
    "ResponseId",
    "SchemaSet",
    "bundled_schemas",
    "official_schemas",
    "render_n64",
    "render_n999",
    "response_date_time",
]
