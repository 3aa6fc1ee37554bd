"""The experiment and instrument store with immutable history.

SQLite by default, PostgreSQL at scale.
"""
