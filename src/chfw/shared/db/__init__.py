"""SQL plumbing both products use: engines, portable values, bulk writes, column types, the
audit log, migrations.

Each product keeps its own tables (its own :class:`sqlalchemy.MetaData`) and its
own migration chain; what is here knows no table of either.
"""
