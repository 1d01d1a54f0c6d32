"""REST API for guest migrations: history with filters, request, detail, cancel, and target readiness.

The request goes through the Migrate form's own validation (MigrationRequestForm) and the same
service as the page (services.migration_request: pre-flight, audit row, job), so a rule lives once.
A refused pre-flight is a 409 whose problem document lists the failing checks by name.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.audit import request_ip
from accounts.roles import Perm
from hosts.models import Guest, Hypervisor
from kvmcluster.api.base import ApiViewSet
from kvmcluster.api.problems import Conflict, Unprocessable
from migrations_app import selectors, services
from migrations_app.choices import AUTO_TARGET, Kind, State
from migrations_app.filters import MigrationFilterForm, TargetsQueryForm
from migrations_app.forms import BandwidthForm, MigrationRequestForm
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import facts
from migrations_app.services import auto_target, drain


class CheckSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    status = serializers.CharField()
    evidence = serializers.CharField(allow_blank=True)


class MigrationSerializer(serializers.ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True)
    requested_by = serializers.StringRelatedField()

    class Meta:
        model = MigrationJob
        fields = [
            "id", "guest", "guest_name", "guest_uuid", "source", "source_name", "target", "target_name", "kind",
            "state", "phase", "options", "requested_by", "requested_at", "started_at", "finished_at", "error",
            "where_guest_is", "downtime_ms", "data_sent", "total_ms", "data_total", "data_processed",
            "data_remaining", "throughput_bps", "dirty_rate_bps", "iteration", "bandwidth_mibps", "postcopy_started",
            "target_reason",
        ]  # fmt: skip


class MigrationDetailSerializer(MigrationSerializer):
    preflight = CheckSerializer(many=True, read_only=True)

    class Meta(MigrationSerializer.Meta):
        fields = [*MigrationSerializer.Meta.fields, "preflight"]


class MigrationRequestSerializer(serializers.Serializer):
    """What the Migrate form takes; `options` are the form's option fields by name (absent = the form's default)."""

    guest = serializers.CharField(max_length=128, help_text="id or name")
    target = serializers.CharField(
        max_length=64,
        help_text='id, name, or "auto" (the best open target; the job\'s `target_reason` says why it was chosen)',
    )
    kind = serializers.ChoiceField(choices=Kind.choices, default=Kind.LIVE)
    options = serializers.DictField(required=False, default=dict)


class BandwidthSerializer(serializers.Serializer):
    mibps = serializers.IntegerField(min_value=1, max_value=100_000)


CONFLICT = OpenApiResponse(description="refused in the job's current state; `detail` says why")


class MigrationQuery(serializers.Serializer):
    guest = serializers.CharField(required=False)
    state = serializers.ChoiceField(required=False, choices=State.choices)


def _form_errors(form) -> ValidationError:
    return ValidationError({name: [str(e) for e in errs] for name, errs in form.errors.items()})


@extend_schema(parameters=[MigrationQuery])
class MigrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    perms = {
        "list": Perm.VIEW_CLUSTER,
        "retrieve": Perm.VIEW_CLUSTER,
        "create": Perm.RUN_MIGRATIONS,
        "cancel": Perm.RUN_MIGRATIONS,
        "bandwidth": Perm.RUN_MIGRATIONS,
        "postcopy": Perm.RUN_MIGRATIONS,
        "targets": Perm.RUN_MIGRATIONS,
    }

    def get_serializer_class(self):
        return MigrationDetailSerializer if self.action == "retrieve" else MigrationSerializer

    def get_queryset(self):
        if self.action != "list":
            return selectors.jobs()
        form = MigrationFilterForm(self.request.query_params)  # the page's own filter rules
        if not form.is_valid():
            raise _form_errors(form)
        return selectors.job_history(**form.filters())

    @extend_schema(
        request=MigrationRequestSerializer,
        responses={201: MigrationDetailSerializer, 400: OpenApiResponse(description="a field is wrong"),
                   409: OpenApiResponse(description="pre-flight refused: `checks` names the failing ones")},
    )  # fmt: skip
    def create(self, request):
        body = MigrationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = _idempotency_key(request)
        guest = _guest(body.validated_data["guest"])
        if key and (earlier := _earlier(request.user, key, guest, body.validated_data)) is not None:
            return earlier
        target, reason = _target(guest, body.validated_data)
        form = MigrationRequestForm(_form_data({**body.validated_data, "target": target}), guest=guest)
        if not form.is_valid():
            raise _form_errors(form)
        try:
            job = services.migration_request(
                guest=guest,
                target=form.cleaned_data["target"],
                kind=form.cleaned_data["kind"],
                options=_sent_options(form, body.validated_data["options"]),
                actor=request.user,
                source_ip=request_ip(request),
                idempotency_key=key,
                target_reason=reason,
            )
        except DjangoPermissionDenied as err:
            raise PermissionDenied(str(err)) from err
        except services.PreflightFailed as err:
            raise Conflict(str(err), checks=[i for i in err.items if i["status"] == "fail"]) from err
        except services.MigrationError as err:
            # the same key sent twice at once: the database let one through, and this is its retry
            if key and (earlier := _earlier(request.user, key, guest, body.validated_data)) is not None:
                return earlier
            raise Conflict(str(err)) from err
        return Response(MigrationDetailSerializer(selectors.jobs().get(pk=job.pk)).data, status=201)

    def _control(self, request, service, **kwargs) -> Response:
        """One of the job page's controls: the same service, its refusal as a 409 with its reason."""
        job = self.get_object()
        try:
            service(job=job, actor=request.user, source_ip=request_ip(request), **kwargs)
        except DjangoPermissionDenied as err:
            raise PermissionDenied(str(err)) from err
        except services.MigrationError as err:
            raise Conflict(str(err)) from err
        return Response(MigrationDetailSerializer(selectors.jobs().get(pk=job.pk)).data, status=202)

    @extend_schema(request=None, responses={202: MigrationDetailSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(request, services.migration_cancel)

    @extend_schema(request=BandwidthSerializer, responses={202: MigrationDetailSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def bandwidth(self, request, pk=None):
        form = BandwidthForm(request.data)  # the job page's own limits
        if not form.is_valid():
            raise _form_errors(form)
        return self._control(request, services.migration_set_bandwidth, mibps=form.cleaned_data["mibps"])

    @extend_schema(request=None, responses={202: MigrationDetailSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def postcopy(self, request, pk=None):
        return self._control(request, services.migration_switch_postcopy)


class TargetQuery(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices, default=Kind.LIVE)
    compressed = serializers.BooleanField(required=False)
    tls = serializers.BooleanField(required=False)
    shutdown_first = serializers.BooleanField(required=False)
    start_on_target = serializers.BooleanField(required=False)


class TargetSerializer(serializers.Serializer):
    target = serializers.IntegerField(source="target.pk")
    target_name = serializers.CharField(source="target.name")
    verdict = serializers.ChoiceField(choices=["ready", "warning", "blocked"])
    checks = CheckSerializer(many=True, source="items")


@extend_schema(parameters=[TargetQuery], responses=TargetSerializer(many=True))
class GuestTargetsViewSet(mixins.ListModelMixin, ApiViewSet):
    """Every other hypervisor's pre-flight checklist for this guest, without starting anything."""

    perms = {"list": Perm.RUN_MIGRATIONS}
    pagination_class = None
    serializer_class = TargetSerializer

    def list(self, request, guest_pk=None):
        guest = get_object_or_404(Guest.objects.select_related("hypervisor"), pk=guest_pk)
        query = TargetsQueryForm(request.query_params)  # the Migrate form's own readiness query
        if not query.is_valid():
            raise _form_errors(query)
        rows = facts.readiness(
            guest,
            query.cleaned_data["kind"] or Kind.LIVE,
            query.readiness_options(default_tls=guest.hypervisor.migration_tls),
        )
        return Response(TargetSerializer(rows, many=True).data)


class DrainPlanViewSet(ApiViewSet):
    """A hypervisor's drain plan ("can I take this host down?"): where each guest would go, how, the
    predicted time and downtime, and what cannot move; computed from facts, nothing starts."""

    perms = {"list": Perm.VIEW_CLUSTER}
    pagination_class = None

    @extend_schema(responses={200: OpenApiResponse(description="The plan: verdict, moves, blocked guests.")})
    def list(self, request, hypervisor_pk=None):
        hypervisor = get_object_or_404(Hypervisor, pk=hypervisor_pk)
        plan = drain.drain_plan(hypervisor)
        drain.drain_plan_shown(hypervisor=hypervisor, plan=plan, actor=request.user, source_ip=request_ip(request))
        return Response(drain.plan_as_dict(plan))


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if key and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError({"Idempotency-Key": ["1-64 characters: letters, digits, . _ : -"]})
    return key


def _earlier(user, key: str, guest: Guest, body: dict) -> Response | None:
    """The job this user already requested with `key`: the same answer again (200), or a 422 when the key
    was used for a different request."""
    job = selectors.jobs().filter(requested_by=user, idempotency_key=key).first()
    if job is None:
        return None
    same = (
        job.guest_id == guest.pk
        and job.kind == body["kind"]
        and body["target"] in ("auto", str(job.target_id), job.target.name)
    )
    if not same:
        raise Unprocessable(f"Idempotency-Key {key!r} was used for migration #{job.pk}, a different request")
    return Response(MigrationDetailSerializer(job).data, status=200, headers={"Idempotent-Replayed": "true"})


def _guest(ref: str) -> Guest:
    guests = Guest.objects.select_related("hypervisor")
    if ref.isdigit():
        return get_object_or_404(guests, pk=int(ref))
    found = list(guests.filter(name=ref)[:2])
    if len(found) != 1:
        raise ValidationError(
            {"guest": [f"no guest named {ref!r}" if not found else f"several guests are named {ref!r}: use the id"]}
        )
    return found[0]


def _target(guest: Guest, body: dict) -> tuple[int, str]:
    """A hypervisor id or name as given, or for "auto" the best open target by the pre-flight and the
    ranking the Migrate form's "Auto" uses (services.auto_target), with the reason the job keeps."""
    ref = body["target"]
    if ref != AUTO_TARGET:
        if ref.isdigit():
            return int(ref), ""
        found = Hypervisor.objects.filter(name=ref).values_list("pk", flat=True).first()
        if found is None:
            raise ValidationError({"target": [f"no hypervisor named {ref!r}"]})
        return found, ""
    form = MigrationRequestForm(_form_data({**body, "target": 0}), guest=guest)
    form.is_valid()  # only the options matter here; their own errors come from the real form below
    options = {k: bool(form.cleaned_data.get(k)) for k in ("compressed", "tls", "shutdown_first", "start_on_target")}
    rows = facts.readiness(guest, body["kind"], options)
    choice = auto_target.auto_choice(guest, body["kind"], options, rows)
    if choice.target is None:
        blocked = [{**c, "target": r["target"].name} for r in rows for c in r["items"] if c["status"] == "fail"]
        raise Conflict(f"no hypervisor can take {guest.name} now: {choice.reason}", checks=blocked)
    return choice.target.pk, choice.stored


def _sent_options(form: MigrationRequestForm, sent: dict) -> dict:
    """The form's options, less TLS when the client did not choose: the service then encrypts exactly
    when both hosts are set up for it (a browser's unticked box means "off"; an absent JSON key does not)."""
    options = form.options()
    if "tls" not in sent:
        options.pop("tls", None)
    return options


def _form_data(body: dict) -> dict:
    """The form's POST shape: the target and mode plus each option, defaults where the client sent none
    (a missing checkbox in a browser means "off"; in the API it means "as the form proposes")."""
    fields = MigrationRequestForm.base_fields
    data = {name: fields[name].initial for name in MigrationRequestForm.OPTION_FIELDS if fields[name].initial}
    for name, value in body["options"].items():
        if name not in MigrationRequestForm.OPTION_FIELDS:
            raise ValidationError({"options": [f"unknown option {name!r}"]})
        data[name] = value
    data.update(target=body["target"], kind=body["kind"])
    return data
