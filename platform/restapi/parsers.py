"""JSON request bodies with limits: too large or too deeply nested is a 400 naming the limit, never a 500.

`LimitedJSONParser` is DRF's default parser (settings.REST_FRAMEWORK); views that list parsers
themselves use it in place of rest_framework.parsers.JSONParser. Limits: SUITE_JSON_MAX_BYTES,
SUITE_JSON_MAX_DEPTH.
"""

from __future__ import annotations

import io
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects in a JSON text, without parsing it (brackets in strings ignored)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class LimitedJSONParser(BaseParser):
    """DRF's JSONParser behind the size and depth limits.

    Not a JSONParser subclass on purpose: for those DRF reads the whole body first (request.body,
    where Django raises RequestDataTooBig beyond DATA_UPLOAD_MAX_MEMORY_SIZE: a 500 in views that
    render every exception, such as /v1), and only then parses. Any other parser gets the request
    stream, which this one reads up to the limit and no further.
    """

    media_type = JSONParser.media_type
    renderer_class = JSONParser.renderer_class

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.SUITE_JSON_MAX_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"The JSON body is larger than {limit} bytes; send less data per request.")
        depth_limit = settings.SUITE_JSON_MAX_DEPTH
        if json_depth(raw) > depth_limit:
            raise ParseError(f"The JSON body is nested deeper than {depth_limit} levels.")
        try:
            return JSONParser().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # belt and braces: the depth scan above should have refused it
            raise ParseError(f"The JSON body is nested deeper than {depth_limit} levels.") from None
