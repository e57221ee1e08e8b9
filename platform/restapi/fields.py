"""Serializer fields shared by the APIs.

`UploadField` is the file part of a multipart/form-data request. DRF's FileField is documented by
drf-spectacular as a URI string unless request and response components are split
(COMPONENT_SPLIT_REQUEST, which renames every input component), so a client generated from the
schema - and schemathesis - sent a URL as text instead of the file's bytes and never reached the
upload's own validation. This field documents itself as binary.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A FileField for input serializers of multipart uploads, documented as `format: binary`."""
