"""REST API for the audit trail, users and roles: the audit page's filter form and exports, and the
user admin pages' service functions (accounts.services), so every rule lives once.

Audit events are read-only (Perm.VIEW_AUDIT, as the page). Users and roles are for admins
(Perm.MANAGE_USERS); a refused change (the last admin, your own account) is a 409 with the reason.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from accounts import selectors, services
from accounts.audit import request_ip
from accounts.chain import link_status
from accounts.forms import AuditFilterForm, RoleForm, UserCreateForm
from accounts.models import AuditEvent
from accounts.permissions import role_of_groups
from accounts.roles import PERMISSION_LABELS, ROLE_LABELS, ROLE_ORDER, ROLES, Perm
from kvmcluster.api.base import ApiViewSet
from kvmcluster.api.problems import Conflict

User = get_user_model()


def _form_errors(form) -> ValidationError:
    return ValidationError({name: [str(e) for e in errs] for name, errs in form.errors.items()})


# ------------------------------------------------------------------------------------ audit events


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = list(selectors.EXPORT_FIELDS)


class ChainSerializer(serializers.Serializer):
    row_ok = serializers.BooleanField()
    link_ok = serializers.BooleanField()
    next_ok = serializers.BooleanField(allow_null=True)
    ok = serializers.BooleanField()


class AuditEventDetailSerializer(AuditEventSerializer):
    chain = serializers.SerializerMethodField()

    class Meta(AuditEventSerializer.Meta):
        fields = [*AuditEventSerializer.Meta.fields, "chain"]

    @extend_schema_field(ChainSerializer)
    def get_chain(self, event: AuditEvent) -> dict:
        return link_status(event)


class FormatIsAFilter(DefaultContentNegotiation):
    """`format` names the export's file format here (as on the audit page), not a DRF renderer: the
    answer is JSON, or the stream the export action builds itself."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _schema_param(name: str, field) -> OpenApiParameter:
    """One of the audit form's fields as a documented query parameter (type, choices, help)."""
    kind = {forms.DateTimeField: OpenApiTypes.DATETIME, forms.IntegerField: OpenApiTypes.INT}.get(
        type(field), OpenApiTypes.STR
    )
    choices = [value for value, _ in getattr(field, "choices", []) if value] or None
    return OpenApiParameter(
        name, kind, required=False, enum=choices, description=str(field.help_text or field.label or name)
    )


AUDIT_FILTERS = [_schema_param(name, field) for name, field in AuditFilterForm.base_fields.items()]


def _audit_filters(request) -> dict:
    """The audit page's own form; unlike the page (which shows an error and ignores the field) the API
    refuses a bad filter with a 400 naming it, so a script never gets rows it did not ask for."""
    params = {k: v for k, v in request.query_params.items() if k in AuditFilterForm.base_fields}
    form = AuditFilterForm(params)
    if not form.is_valid():
        raise _form_errors(form)
    return form.filters()


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["csv", "json"], default="csv")


@extend_schema(parameters=AUDIT_FILTERS)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """The audit trail, newest first, filtered as on the audit page."""

    perms = {"list": Perm.VIEW_AUDIT, "retrieve": Perm.VIEW_AUDIT, "export": Perm.VIEW_AUDIT}
    content_negotiation_class = FormatIsAFilter

    def get_serializer_class(self):
        return AuditEventDetailSerializer if self.action == "retrieve" else AuditEventSerializer

    def get_queryset(self):
        if self.action == "list":
            return selectors.audit_events(_audit_filters(self.request))
        return AuditEvent.objects.all()

    @extend_schema(
        parameters=[ExportQuery],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): AuditEventSerializer(many=True)},
    )
    @action(detail=False, methods=["get"])
    def export(self, request):
        """Every matching row, streamed: the audit page's CSV (spreadsheet-safe) or a JSON array."""
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        fmt = query.validated_data["format"]
        filters = _audit_filters(request)
        if fmt == "csv":
            response = StreamingHttpResponse(selectors.export_csv(filters), content_type="text/csv; charset=utf-8")
        else:
            response = StreamingHttpResponse(selectors.export_json(filters), content_type="application/json")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
        return response


# ------------------------------------------------------------------------------------ users, roles


class UserSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_active", "is_superuser", "last_login", "date_joined"]

    def get_role(self, user) -> str:
        return "admin" if user.is_superuser else role_of_groups(g.name for g in user.groups.all())


class UserCreateSerializer(serializers.Serializer):
    """The user page's fields; the password goes through the same validators (UserCreateForm)."""

    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, write_only=True)
    email = serializers.CharField(max_length=254, required=False, default="", allow_blank=True)
    role = serializers.ChoiceField(choices=list(ROLES), default="viewer")


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=list(ROLES))


REFUSED = OpenApiResponse(description="refused: the last active admin, or your own account; `detail` says why")


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Users with their role; changes through the user pages' service functions (audited there)."""

    perms = {name: Perm.MANAGE_USERS for name in ("list", "retrieve", "create", "role", "deactivate", "reactivate")}
    serializer_class = UserSerializer

    def get_queryset(self):
        return User.objects.prefetch_related("groups").order_by("-id")

    def _answer(self, user, status: int = 200) -> Response:
        return Response(UserSerializer(self.get_queryset().get(pk=user.pk)).data, status=status)

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request):
        body = UserCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        form = UserCreateForm(
            {
                "username": data["username"],
                "email": data["email"],
                "password1": data["password"],
                "password2": data["password"],
                "role": data["role"],
            }
        )
        if not form.is_valid():
            errors = dict(form.errors)
            for name in ("password1", "password2"):  # the API has one password field
                if name in errors:
                    errors["password"] = errors.pop(name)
            raise ValidationError({name: [str(e) for e in errs] for name, errs in errors.items()})
        user = services.user_create(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            email=form.cleaned_data.get("email") or "",
            role=form.cleaned_data["role"],
            actor=request.user,
            source_ip=request_ip(request),
        )
        return self._answer(user, status=201)

    @extend_schema(request=RoleChangeSerializer, responses={200: UserSerializer, 409: REFUSED})
    @action(detail=True, methods=["post"])
    def role(self, request, pk=None):
        """Give the user exactly this role (the last active admin keeps theirs)."""
        form = RoleForm(request.data)  # the role page's own form
        if not form.is_valid():
            raise _form_errors(form)
        target = self.get_object()
        try:
            services.user_set_role(
                user=target, role=form.cleaned_data["role"], actor=request.user, source_ip=request_ip(request)
            )
        except DjangoValidationError as err:
            raise Conflict(" ".join(err.messages)) from err
        return self._answer(target)

    def _set_active(self, request, active: bool) -> Response:
        target = self.get_object()
        try:
            services.user_set_active(user=target, active=active, actor=request.user, source_ip=request_ip(request))
        except DjangoValidationError as err:
            raise Conflict(" ".join(err.messages)) from err
        return self._answer(target)

    @extend_schema(request=None, responses={200: UserSerializer, 409: REFUSED})
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Sign the user out everywhere and refuse their sign-ins and tokens until reactivated."""
        return self._set_active(request, active=False)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        return self._set_active(request, active=True)


class PermissionSerializer(serializers.Serializer):
    codename = serializers.CharField()
    label = serializers.CharField()


class RoleSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    permissions = PermissionSerializer(many=True)


def role_table() -> list[dict]:
    """accounts.roles.ROLES as data, lowest role first (as the user page offers them)."""
    return [
        {
            "name": role,
            "label": ROLE_LABELS[role],
            "permissions": [{"codename": str(p), "label": PERMISSION_LABELS[p]} for p in Perm if p in ROLES[role]],
        }
        for role in reversed(ROLE_ORDER)
    ]


@extend_schema(responses=RoleSerializer(many=True))
class RoleViewSet(mixins.ListModelMixin, ApiViewSet):
    """The roles and their permissions, from the one table (accounts.roles)."""

    perms = {"list": Perm.MANAGE_USERS}
    pagination_class = None
    serializer_class = RoleSerializer

    def list(self, request):
        return Response(RoleSerializer(role_table(), many=True).data)
