"""ASGI entry point of the Django demo."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frameworks_demo.django_site.settings")
application = get_asgi_application()
