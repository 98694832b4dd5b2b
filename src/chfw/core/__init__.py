"""The pure core: GBCS, the domain, DUIS documents, XML signatures. No I/O, nothing above it.

:mod:`chfw.core.gbcs` reads and writes CS06 messages; :mod:`chfw.core.domain`
holds the values and the decisions (what an outcome means, who gets which
alert, how a CH's alerts are ordered); :mod:`chfw.core.duis` renders and
validates DUIS alerts; :mod:`chfw.core.signing` signs and verifies them.
import-linter (``.importlinter``) keeps it free of storage, HTTP and both products.
"""
