"""REST API for the load balancer: its proposals (list, apply, dismiss) and the policy (read; admins change
it). Each route is one call into services.balancer_actions / services.balancer_policy; a refusal is a 409
problem document with the service's reason (docs/balancing.md)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import request_ip
from accounts.roles import Perm
from kvmcluster.api.base import ApiViewSet
from kvmcluster.api.permissions import RolePermission
from kvmcluster.api.problems import Conflict
from migrations_app.models import BalancerMode, BalancerPolicy, BalancerProposal, ProposalState
from migrations_app.services import MigrationError, balancer_actions, balancer_policy

CONFLICT = OpenApiResponse(description="refused in the proposal's or the cluster's state: `detail` says why")


class ProposalSerializer(serializers.ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True)
    headline = serializers.CharField(read_only=True)
    decided_by = serializers.StringRelatedField()

    class Meta:
        model = BalancerProposal
        fields = [
            "id", "state", "guest", "guest_name", "source", "source_name", "target", "target_name", "headline",
            "imbalance_before", "imbalance_after", "predicted_s", "why", "created_at", "updated_at", "decided_at",
            "decided_by", "job", "operation", "round",
        ]  # fmt: skip


class ProposalQuery(serializers.Serializer):
    state = serializers.ChoiceField(required=False, choices=ProposalState.choices)
    hypervisor = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)


def _call(service, **kwargs: Any) -> Any:
    try:
        return service(**kwargs)
    except DjangoPermissionDenied as err:
        raise PermissionDenied(str(err)) from err
    except MigrationError as err:
        raise Conflict(str(err)) from err


@extend_schema(parameters=[ProposalQuery])
class BalancerProposalViewSet(mixins.ListModelMixin, ApiViewSet):
    """The balancer's proposals, newest first (?state=, ?hypervisor= for moves off or onto a host)."""

    perms = {"list": Perm.VIEW_CLUSTER, "apply": Perm.RUN_MIGRATIONS, "dismiss": Perm.RUN_MIGRATIONS}
    serializer_class = ProposalSerializer

    def get_queryset(self):
        qs = BalancerProposal.objects.select_related("source", "target", "decided_by")
        if self.action != "list":
            return qs
        query = ProposalQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        if state := query.validated_data.get("state"):
            qs = qs.filter(state=state)
        if hypervisor := query.validated_data.get("hypervisor"):
            qs = qs.filter(source_id=hypervisor) | qs.filter(target_id=hypervisor)
        return qs

    @extend_schema(request=None, responses={201: ProposalSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Start the proposed move as a live guest migration in the caller's name (pre-flight as always)."""
        proposal = self.get_object()
        _call(balancer_actions.proposal_apply, proposal=proposal, actor=request.user, source_ip=request_ip(request))
        return Response(ProposalSerializer(self.get_queryset().get(pk=proposal.pk)).data, status=201)

    @extend_schema(request=None, responses={200: ProposalSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        proposal = self.get_object()
        _call(balancer_actions.proposal_dismiss, proposal=proposal, actor=request.user, source_ip=request_ip(request))
        return Response(ProposalSerializer(self.get_queryset().get(pk=proposal.pk)).data)


class PolicySerializer(serializers.ModelSerializer):
    """The policy; rules name guests (never_move: names; keep_apart / keep_together: groups of names)."""

    never_move = serializers.ListField(child=serializers.CharField(max_length=128), required=False, max_length=5000)
    keep_apart = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(max_length=128), min_length=2, max_length=100),
        required=False,
        max_length=1000,
    )
    keep_together = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(max_length=128), min_length=2, max_length=100),
        required=False,
        max_length=1000,
    )
    mode = serializers.ChoiceField(choices=BalancerMode.choices, required=False)

    class Meta:
        model = BalancerPolicy
        fields = [*balancer_policy.SCALARS, "never_move", "keep_apart", "keep_together", "updated_at"]
        read_only_fields = ["updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        names = [*attrs.get("never_move", [])]
        names += [n for key in ("keep_apart", "keep_together") for g in attrs.get(key, []) for n in g]
        try:
            balancer_policy.guests_by_name(names)
        except balancer_policy.UnknownGuests as err:
            raise ValidationError({"guests": [str(err)]}) from err
        return attrs


class BalancerPolicyView(APIView):
    """GET the balancing policy (viewers too); PATCH changes the fields sent (admins; audited)."""

    permission_classes = [RolePermission]
    perms = {"get": Perm.VIEW_CLUSTER, "patch": Perm.MANAGE_BALANCING}

    @extend_schema(responses={200: PolicySerializer})
    def get(self, request):
        return Response(PolicySerializer(balancer_policy.policy_as_dict()).data)

    @extend_schema(
        request=PolicySerializer,
        responses={200: PolicySerializer, 400: OpenApiResponse(description="a field is wrong")},
    )
    def patch(self, request):
        body = PolicySerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        out = _call(
            balancer_policy.policy_update, changes=dict(body.validated_data), actor=request.user,
            source_ip=request_ip(request),
        )  # fmt: skip
        return Response(PolicySerializer(out).data)
