"""REST API for maintenance mode and operations: enter / exit maintenance on a hypervisor, an operation's
progress, and its pause / resume / cancel. Each route is one call into services.operations or
services.operation_controls; a refusal is a 409 problem document with the service's reason."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.audit import request_ip
from accounts.roles import Perm
from hosts.models import Hypervisor
from kvmcluster.api.base import ApiViewSet
from kvmcluster.api.problems import Conflict
from migrations_app.models import Operation
from migrations_app.services import MigrationError, operation_controls, operation_return, operations

CONFLICT = OpenApiResponse(description="refused in the current state: `detail` says why")


class EnterSerializer(serializers.Serializer):
    stop_on_first_failure = serializers.BooleanField(default=False)
    force = serializers.BooleanField(default=False, help_text="Move the movable guests even if some cannot move.")


class ReturnSerializer(serializers.Serializer):
    stop_on_first_failure = serializers.BooleanField(default=False)


class ChildSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    guest_name = serializers.CharField()
    source_name = serializers.CharField(source="source.name")
    target_name = serializers.CharField(source="target.name")
    kind = serializers.CharField()
    state = serializers.CharField()
    error = serializers.CharField()


class OperationSerializer(serializers.ModelSerializer):
    hypervisor_name = serializers.CharField(source="hypervisor.name", read_only=True)
    requested_by = serializers.StringRelatedField()
    progress = serializers.SerializerMethodField()
    children = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = [
            "id", "kind", "hypervisor", "hypervisor_name", "state", "stop_on_first_failure", "stopped", "plan",
            "reasons", "refusals", "requested_by", "created_at", "finished_at", "progress", "children",
        ]  # fmt: skip

    def get_progress(self, op: Operation) -> dict[str, int | None]:
        p = operations.operation_progress(op)
        return {
            "total": p.total,
            "done": p.done,
            "running": p.running,
            "waiting": p.waiting,
            "failed": p.failed,
            "percent": p.percent,
            "eta_s": p.eta_s,  # seconds left, estimated from the plan's predictions (None once it ended)
        }

    def get_children(self, op: Operation) -> list[dict[str, Any]]:
        return ChildSerializer(operations.operation_progress(op).jobs, many=True).data


def _call(service, **kwargs: Any) -> Any:
    try:
        return service(**kwargs)
    except DjangoPermissionDenied as err:
        from rest_framework.exceptions import PermissionDenied

        raise PermissionDenied(str(err)) from err
    except MigrationError as err:
        raise Conflict(str(err)) from err


class MaintenanceViewSet(ApiViewSet):
    """Enter maintenance (POST: the drain plan, recomputed, runs as an operation), leave it (POST exit/), and
    bring the guests of the last drain back as an operation of kind "return" (POST return/)."""

    perms = {"create": Perm.RUN_MIGRATIONS, "exit": Perm.RUN_MIGRATIONS, "return_guests": Perm.RUN_MIGRATIONS}
    pagination_class = None

    @extend_schema(request=EnterSerializer, responses={201: OperationSerializer, 409: CONFLICT})
    def create(self, request, hypervisor_pk=None):
        hypervisor = get_object_or_404(Hypervisor, pk=hypervisor_pk)
        body = EnterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        op = _call(
            operations.maintenance_enter,
            hypervisor=hypervisor,
            actor=request.user,
            source_ip=request_ip(request),
            **body.validated_data,
        )
        return Response(OperationSerializer(op).data, status=201)

    @extend_schema(
        request=None,
        responses={200: OpenApiResponse(description="The host's state and the reverse plan."), 409: CONFLICT},
    )
    @action(detail=False, methods=["post"])
    def exit(self, request, hypervisor_pk=None):
        hypervisor = get_object_or_404(Hypervisor, pk=hypervisor_pk)
        out = _call(
            operation_controls.maintenance_exit,
            hypervisor=hypervisor,
            actor=request.user,
            source_ip=request_ip(request),
        )
        return Response(out)

    @extend_schema(request=ReturnSerializer, responses={201: OperationSerializer, 409: CONFLICT})
    @action(detail=False, methods=["post"], url_path="return", url_name="return")
    def return_guests(self, request, hypervisor_pk=None):
        hypervisor = get_object_or_404(Hypervisor, pk=hypervisor_pk)
        body = ReturnSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        op = _call(
            operation_return.return_start,
            hypervisor=hypervisor,
            actor=request.user,
            source_ip=request_ip(request),
            **body.validated_data,
        )
        return Response(OperationSerializer(op).data, status=201)


class OperationViewSet(mixins.RetrieveModelMixin, ApiViewSet):
    """An operation (a drain) with its progress and children; pause, resume and cancel it."""

    perms = {
        "retrieve": Perm.VIEW_CLUSTER,
        "pause": Perm.RUN_MIGRATIONS,
        "resume": Perm.RUN_MIGRATIONS,
        "cancel": Perm.RUN_MIGRATIONS,
    }
    serializer_class = OperationSerializer
    queryset = Operation.objects.select_related("hypervisor", "requested_by")

    def _control(self, request, service) -> Response:
        op = _call(service, operation=self.get_object(), actor=request.user, source_ip=request_ip(request))
        return Response(OperationSerializer(self.get_queryset().get(pk=op.pk)).data, status=202)

    @extend_schema(request=None, responses={202: OperationSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._control(request, operation_controls.operation_pause)

    @extend_schema(request=None, responses={202: OperationSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._control(request, operation_controls.operation_resume)

    @extend_schema(request=None, responses={202: OperationSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(request, operation_controls.operation_cancel)
