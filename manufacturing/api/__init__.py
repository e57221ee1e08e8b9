"""REST API of the manufacturing app, mounted at /api/manufacturing/ (namespace "manufacturing_api"),
one module per area (work_orders, assets: recordings, condition data, plans, meters, scans; health: reading assets and recordings; assistant); here
what they share."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response

from audit.actors import actor_from_request


def request_actor(request):

    return actor_from_request(request)


def refused(message: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": message}, status=code)


class MaintenanceRefusal(serializers.Serializer):
    detail = serializers.CharField()
