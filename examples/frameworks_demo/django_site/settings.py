"""Settings of the Django demo. Serve it (from ``examples/``) with
``uvicorn frameworks_demo.django_site.asgi:application`` or
``python -m django runserver --settings frameworks_demo.django_site.settings``.

``GZipMiddleware`` comes first (outermost), ``SplitlabMiddleware`` after it: splitlab decorates
the page before it is compressed. Behind a TLS-terminating proxy, ``SECURE_PROXY_SSL_HEADER``
makes the anonymous-id cookie ``Secure``.
"""

SECRET_KEY = "demo-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "frameworks_demo.django_site.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.common.CommonMiddleware",
    "splitlab.sdk.django.SplitlabMiddleware",
]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SPLITLAB_CLIENT = "frameworks_demo.django_site.views.CLIENT"
USE_TZ = True
