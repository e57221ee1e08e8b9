"""The manufacturing app's words in the access policy (autodiscovered by the access app)."""

from access.actions import register

register("asset", ["view"])
# file: raise, plan, assign and cancel (the owning site); work: carry it out (start, hold, resume,
# photos, the assistant); close: complete it with codes. An assignee from another site gets view,
# work and close on that one work order by grant.
register("work_order", ["view", "file", "work", "close", "share"])
