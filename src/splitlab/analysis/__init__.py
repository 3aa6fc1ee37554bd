"""Analysis: engines (DuckDB default, Spark at scale) and statistics."""
