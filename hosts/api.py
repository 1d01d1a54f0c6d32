"""REST API for the inventory: storage servers, hypervisors and guests (read only for now).

Thin: serializers shape, selectors query; the hypervisor URI is shown only to those who may manage
hosts (it can hold a user name), as on the pages.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.audit import request_ip
from accounts.permissions import user_can
from accounts.roles import Perm
from hosts import selectors
from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import ha, power
from kvmcluster.api.base import ApiViewSet
from kvmcluster.api.problems import Conflict

READ = {"list": Perm.VIEW_CLUSTER, "retrieve": Perm.VIEW_CLUSTER}


class StorageServerSerializer(serializers.ModelSerializer):
    class Meta:
        model = StorageServer
        fields = ["id", "name", "address", "protocol", "export_path", "mount_path", "created_at"]


class HypervisorSerializer(serializers.ModelSerializer):
    storage_servers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    uri = serializers.SerializerMethodField()

    class Meta:
        model = Hypervisor
        fields = [
            "id", "name", "uri", "migration_address", "state", "last_error", "last_seen_at", "hostname",
            "cpu_model", "cpus", "vcpus_allocated", "memory_total_mib", "memory_free_mib", "bridges",
            "storage_servers",
        ]  # fmt: skip

    def get_uri(self, hv: Hypervisor) -> str | None:
        return hv.uri if user_can(self.context["request"].user, Perm.MANAGE_HOSTS) else None


class GuestSerializer(serializers.ModelSerializer):
    hypervisor_name = serializers.CharField(source="hypervisor.name", read_only=True)

    class Meta:
        model = Guest
        fields = [
            "id", "uuid", "name", "hypervisor", "hypervisor_name", "power", "persistent", "vcpus", "memory_mib",
            "migrating", "recovering", "last_seen_at", "lease", "ha_restart", "ha_priority",
        ]  # fmt: skip


class GuestQuery(serializers.Serializer):
    """The guest list's query parameters (checked: no raw text reaches a query)."""

    q = serializers.CharField(required=False, max_length=128)
    hypervisor = serializers.IntegerField(required=False, min_value=1, max_value=2**62)  # a database id, not any int
    power = serializers.ChoiceField(required=False, choices=Guest.Power.choices)


class PowerSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(power.ACTIONS))
    confirm = serializers.BooleanField(default=False, help_text="Required for destroy (force off), as on the page.")


class HaSerializer(serializers.Serializer):
    restart = serializers.BooleanField(help_text="Restart the guest on a healthy host when its host fails.")
    priority = serializers.IntegerField(
        default=0, min_value=ha.PRIORITY_MIN, max_value=ha.PRIORITY_MAX, help_text="Higher restarts first."
    )


class StorageServerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    perms = READ
    serializer_class = StorageServerSerializer
    queryset = StorageServer.objects.all()


class HypervisorViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    perms = READ
    serializer_class = HypervisorSerializer
    queryset = Hypervisor.objects.prefetch_related("storage_servers")


@extend_schema(parameters=[GuestQuery])
class GuestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    perms = {**READ, "power": Perm.POWER_GUESTS, "ha": Perm.POWER_GUESTS}
    serializer_class = GuestSerializer

    def get_queryset(self):
        if self.action != "list":
            return Guest.objects.select_related("hypervisor")
        query = GuestQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        rows = selectors.guest_queryset(q=q.get("q", ""), hypervisor_id=q.get("hypervisor"), power=q.get("power", ""))
        # The table's queryset loads only the columns the page shows; the API shows more: load them all
        # in the one query (a deferred column would cost a query per row).
        return rows.defer(None)

    @extend_schema(
        request=PowerSerializer,
        responses={200: GuestSerializer, 409: OpenApiResponse(description="libvirt refused, or the guest is moving")},
    )
    @action(detail=True, methods=["post"])
    def power(self, request, pk=None):
        """Start, shut down or force off; the answer is the guest as libvirt reports it afterwards."""
        body = PowerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["action"] == "destroy" and not body.validated_data["confirm"]:
            raise ValidationError(
                {"confirm": ["Forcing a guest off loses what it has not written: send confirm=true."]}
            )
        try:
            guest = power.guest_power(
                guest=self.get_object(),
                action=body.validated_data["action"],
                actor=request.user,
                source_ip=request_ip(request),
            )
        except power.PowerRefused as err:
            raise Conflict(err.message) from err
        return Response(GuestSerializer(guest).data)

    @extend_schema(
        request=HaSerializer,
        responses={200: GuestSerializer, 409: OpenApiResponse(description="the guest fails the pre-flight for it")},
    )
    @action(detail=True, methods=["post"])
    def ha(self, request, pk=None):
        """Restart on failure and its priority; refused (409, the failing checks) without a lease or shared storage."""
        body = HaSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            guest = ha.guest_ha_set(
                guest=self.get_object(),
                restart=body.validated_data["restart"],
                priority=body.validated_data["priority"],
                actor=request.user,
                source_ip=request_ip(request),
            )
        except ha.HaRefused as err:
            failed = [{"name": c.name, "status": "fail", "detail": c.detail} for c in err.checks]
            raise Conflict("; ".join(err.reasons), checks=failed) from err
        return Response(GuestSerializer(guest).data)
