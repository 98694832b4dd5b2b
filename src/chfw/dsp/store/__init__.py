"""Persistence: the schema, its migrations, and one small repository module per table group.

Every repository function takes a SQLAlchemy ``Connection``: the caller owns
the transaction, so one intake message can touch inventory, history and
outbox atomically.
"""
