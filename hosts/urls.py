"""Pages of the hosts app. Paths are plural kebab-case; names are what templates and tests reverse."""

from django.urls import path

from hosts import views

urlpatterns = [
    path("", views.topology, name="topology"),
    path("inventory/refresh/", views.inventory_refresh, name="inventory-refresh"),
    path("guests/", views.guest_list, name="guest-list"),
    path("guests/<int:pk>/", views.guest_detail, name="guest-detail"),
    path("guests/<int:pk>/power/", views.guest_power, name="guest-power"),
    path("guests/<int:pk>/ha/", views.guest_ha, name="guest-ha"),
    path("guests/<int:pk>/load/", views.guest_load, name="guest-load"),
    path("hypervisors/", views.hypervisor_list, name="hypervisor-list"),
    path("hypervisors/new/", views.hypervisor_create, name="hypervisor-create"),
    path("hypervisors/test-connection/", views.hypervisor_test_connection, name="hypervisor-test-connection"),
    path("hypervisors/<int:pk>/", views.hypervisor_detail, name="hypervisor-detail"),
    path("hypervisors/<int:pk>/edit/", views.hypervisor_edit, name="hypervisor-edit"),
    path("hypervisors/<int:pk>/delete/", views.hypervisor_delete, name="hypervisor-delete"),
    path("hypervisors/<int:pk>/refresh/", views.inventory_refresh, name="hypervisor-refresh"),
    path("hypervisors/<int:pk>/health/clear/", views.hypervisor_health_clear, name="hypervisor-health-clear"),
    path("hypervisors/<int:pk>/load/", views.hypervisor_load, name="hypervisor-load"),
    path("storage-servers/", views.storage_list, name="storage-list"),
    path("storage-servers/new/", views.storage_create, name="storage-create"),
    path("storage-servers/<int:pk>/", views.storage_detail, name="storage-detail"),
    path("storage-servers/<int:pk>/edit/", views.storage_edit, name="storage-edit"),
    path("storage-servers/<int:pk>/delete/", views.storage_delete, name="storage-delete"),
]
