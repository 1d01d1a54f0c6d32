"""What every API view shares: role permissions per action (DRF already opts its views out of
LoginRequiredMiddleware, so an API client gets 401, never the HTML login page)."""

from __future__ import annotations

from rest_framework import viewsets

from kvmcluster.api.permissions import RolePermission


class ApiViewSet(viewsets.GenericViewSet):
    permission_classes = [RolePermission]
    perms: dict = {}
