"""The same small page in FastAPI and in Django, decorated by the splitlab SDK behind gzip."""
