"""List pagination for every API: DRF's limit/offset, with bad values refused.

DRF's LimitOffsetPagination quietly falls back to its defaults when `limit` or `offset` is not a
number; a client then gets a page it did not ask for without knowing why. Here a value that is not
a whole number (or one too large for the database) is a 400 naming the parameter; an empty value
(a blank form field) means the default, as for every optional query parameter.
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

_WHOLE_NUMBER = re.compile(r"^[+-]?\d{1,18}$")  # at most 18 digits: fits the database's 64-bit LIMIT


class StrictLimitOffsetPagination(LimitOffsetPagination):
    def get_limit(self, request):
        self._check(request, self.limit_query_param)
        return super().get_limit(request)

    def get_offset(self, request):
        self._check(request, self.offset_query_param)
        return super().get_offset(request)

    @staticmethod
    def _check(request, name: str) -> None:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise ValidationError({name: [f"give {name} once."]})
        if values and values[0].strip() and not _WHOLE_NUMBER.match(values[0].strip()):  # empty: the default
            raise ValidationError({name: [f"{name} must be a whole number, e.g. {name}=50."]})
