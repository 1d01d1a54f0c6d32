"""REST API for the host-pair readiness matrix: GET /api/v1/hypervisors/readiness/, the same service as
the page (services.readiness); libvirt is asked for facts only."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.roles import Perm
from kvmcluster.api.base import ApiViewSet
from migrations_app.services import readiness


class HostPairReadinessViewSet(ApiViewSet):
    """Every source × target pair of hypervisors: shared storage, bridges, CPU, memory headroom, a reachable
    migration address and TLS, each with its answer (yes / unsure / no) and evidence."""

    perms = {"list": Perm.VIEW_CLUSTER}
    pagination_class = None

    @extend_schema(
        responses={200: OpenApiResponse(description="`hosts`, `columns`, and `pairs` with a verdict and cells.")}
    )
    def list(self, request):
        return Response(readiness.matrix_as_dict(readiness.readiness_matrix()))
