"""Guest migration pages under /migrations/, plus the Migrate form under /guests/<pk>/migrate/ and a host's
drain plan under /hypervisors/<pk>/drain-plan/."""

from django.urls import path

from migrations_app import views

urlpatterns = [
    path("", views.migration_list, name="migration-list"),
    path("<int:pk>/", views.migration_detail, name="migration-detail"),
    path("<int:pk>/progress/", views.migration_progress, name="migration-progress"),
    path("<int:pk>/cancel/", views.migration_cancel, name="migration-cancel"),
    path("<int:pk>/bandwidth/", views.migration_bandwidth, name="migration-bandwidth"),
    path("<int:pk>/postcopy/", views.migration_postcopy, name="migration-postcopy"),
]

# mounted at the site root by kvmcluster/urls.py
guest_urlpatterns = [
    path("guests/<int:pk>/migrate/", views.migration_create, name="guest-migrate"),
    path("guests/<int:pk>/migrate/targets/", views.migration_targets, name="guest-migrate-targets"),
    path("hypervisors/<int:pk>/drain-plan/", views.hypervisor_drain_plan, name="hypervisor-drain-plan"),
]
