"""The demo's URLs."""

from django.urls import path

from . import views

urlpatterns = [path("", views.home), path("stream", views.stream),
               path("api/banner", views.banner)]
