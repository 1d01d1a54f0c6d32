from django.urls import include, path

urlpatterns = [
    path("", include("hosts.urls")),
    path("migrations/", include("migrations_app.urls")),
    path("", include("accounts.urls")),
]
