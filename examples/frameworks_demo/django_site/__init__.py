"""The demo page as a Django project (settings, URLs and views in this package)."""
