"""The ASGI application: config API, intake, admin API, OFREP, metrics."""
