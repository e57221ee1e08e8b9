"""REST API of the finance app, mounted at /api/finance/ (namespace "finance_api"), one module per
resource (transactions, alerts, cases, sars, scenarios); here what they share. Thin: parse,
authorize through the selectors/services, call one service, answer."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response

from access.errors import PolicyDenied
from audit.actors import actor_from_request
from finance import services
from portal.submissions import REPLAYED_HEADER


def request_actor(request):

    return actor_from_request(request)


class RefusalOutput(serializers.Serializer):
    detail = serializers.CharField()


class BatchRefusalOutput(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField())


REFUSALS = {
    400: RefusalOutput,
    401: RefusalOutput,
    403: RefusalOutput,
    404: RefusalOutput,
}


def refused(error: Exception) -> Response:
    if isinstance(error, services.BatchRejected):
        return Response({"detail": str(error), "errors": error.errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, PolicyDenied | services.FourEyesViolation):
        return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
    return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)


REFUSED = (services.FinanceRefused, PolicyDenied)


def created(data, *, replayed: bool) -> Response:
    """201, or 200 with `Idempotent-Replayed: true` when the same submission was already taken."""
    if not replayed:
        return Response(data, status=status.HTTP_201_CREATED)
    response = Response(data, status=status.HTTP_200_OK)
    response[REPLAYED_HEADER] = "true"
    return response
