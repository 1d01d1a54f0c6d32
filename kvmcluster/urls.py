from django.urls import include, path

from migrations_app.urls import guest_urlpatterns as migration_guest_urls

urlpatterns = [
    path("", include("hosts.urls")),
    path("migrations/", include("migrations_app.urls")),
    path("", include(migration_guest_urls)),
    path("", include("accounts.urls")),
]
