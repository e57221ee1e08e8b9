"""Shared REST API infrastructure every API of the suite uses: the JSON parser with size and depth
limits (restapi.parsers, DRF's default parser) and the limit/offset pagination that refuses bad
values (restapi.pagination, DRF's default pagination).

Not a Django app (no models, no URLs). It imports only Django and DRF, none of the suite's own
packages, so it sits at the bottom of the layers beside `ops`: the platform apps, inference and the
industry apps may all use it. (The parser lived in `accounts`, the pagination in `suite`, the
composition root, which no lower layer may import.)
"""
