import os

from django.conf import settings
from django.conf.urls.static import static
from django.contrib.auth.decorators import login_not_required
from django.contrib.staticfiles.views import serve as staticfiles_serve
from django.urls import include, path, re_path
from django.views.static import serve

from kvmcluster.metrics import metrics_view
from migrations_app.urls import guest_urlpatterns as migration_guest_urls

urlpatterns = [
    path("", include("hosts.urls")),
    path("migrations/", include("migrations_app.urls")),
    path("", include(migration_guest_urls)),
    path("", include("accounts.urls")),
    path("notifications/", include("notifications.urls")),
    path("api/v1/", include("kvmcluster.api.urls")),
    path("metrics", metrics_view, name="metrics"),
]

# daphne serves no static files and runserver's static handler is not in play: in DEBUG Django's
# staticfiles finders serve them; otherwise KVMCLUSTER_SERVE_STATIC=1 serves STATIC_ROOT (after
# collectstatic). CSS must load on the login page too, hence login_not_required.
if settings.DEBUG:
    urlpatterns += static(settings.STATIC_URL, view=login_not_required(staticfiles_serve))
elif os.environ.get("KVMCLUSTER_SERVE_STATIC") == "1":
    urlpatterns += [
        re_path(r"^static/(?P<path>.*)$", login_not_required(serve), {"document_root": settings.STATIC_ROOT})
    ]
