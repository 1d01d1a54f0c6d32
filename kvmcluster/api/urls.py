"""/api/v1/: the REST API, one more thin interface over the same services as the pages (docs/api.md).

The schema and its Swagger UI / Redoc pages (vendored by drf-spectacular-sidecar, no CDN) are for
signed-in users; everything answers 401/403 as problem documents, never with the login page.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from hosts import api as hosts_api
from migrations_app import api as migrations_api
from migrations_app import api_balancer as balancer_api
from migrations_app import api_operations as operations_api
from migrations_app import api_readiness as readiness_api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("storage-servers", hosts_api.StorageServerViewSet, basename="api-storage-server")
# before "hypervisors": its detail route would take "readiness" for an id
router.register("hypervisors/readiness", readiness_api.HostPairReadinessViewSet, basename="api-hypervisor-readiness")
router.register("hypervisors", hosts_api.HypervisorViewSet, basename="api-hypervisor")
router.register("guests", hosts_api.GuestViewSet, basename="api-guest")
router.register("migrations", migrations_api.MigrationViewSet, basename="api-migration")
router.register(r"guests/(?P<guest_pk>\d+)/targets", migrations_api.GuestTargetsViewSet, basename="api-guest-targets")
router.register(
    r"hypervisors/(?P<hypervisor_pk>\d+)/drain-plan", migrations_api.DrainPlanViewSet, basename="api-drain-plan"
)
router.register(
    r"hypervisors/(?P<hypervisor_pk>\d+)/maintenance", operations_api.MaintenanceViewSet, basename="api-maintenance"
)
router.register("operations", operations_api.OperationViewSet, basename="api-operation")
router.register("balancer/proposals", balancer_api.BalancerProposalViewSet, basename="api-balancer-proposal")
router.register("audit-events", accounts_api.AuditEventViewSet, basename="api-audit-event")
router.register("users", accounts_api.UserViewSet, basename="api-user")
router.register("roles", accounts_api.RoleViewSet, basename="api-role")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("balancer/policy/", balancer_api.BalancerPolicyView.as_view(), name="api-balancer-policy"),
    path("", include(router.urls)),
]
