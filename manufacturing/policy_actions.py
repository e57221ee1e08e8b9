"""The manufacturing app's words in the access policy (autodiscovered by the access app)."""

from access.actions import register

register("asset", ["view"])
register("work_order", ["view", "file", "close", "share"])
