"""The action vocabulary: every resource type the policy may name, and the actions it accepts.

The platform's own resource types are written down here; every app adds its own. The validator refuses
a rule that names a resource type or an action that is not here, so a typo in the policy file
("veiw") stops start-up instead of silently never matching.

An app that brings a new resource type or action extends the vocabulary with
`register("study", ["view", "annotate"])` in a module named `policy_actions.py` at the root of
the app: the access app imports every installed app's `policy_actions` module before it loads
the policy file (as the admin does with `admin.py`), so the extension is known when the file
is validated, whatever the order of INSTALLED_APPS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# resource type -> actions, for the platform's own resources. Each industry app registers its
# resource types in its policy_actions.py (medical: study; finance: transaction, alert, case, sar;
# manufacturing: asset, work_order; inference: model), so this module names no industry.
PLATFORM_VOCABULARY: dict[str, tuple[str, ...]] = {
    "trail": ("read", "export"),
    # events on the trail, named by the resource type they are about (trail_event:study, ...):
    # who reads which events, and who may open the sealed texts in their payloads
    "trail_event": ("read", "unseal"),
    "user": ("view", "manage", "share", "approve"),
    "policy": ("explain", "reload"),
    # portal sections, for navigation: portal:medical, portal:finance, ...
    "portal": ("view",),
}

_vocabulary: dict[str, set[str]] = {rtype: set(actions) for rtype, actions in PLATFORM_VOCABULARY.items()}


def register(resource_type: str, actions: Iterable[str]) -> None:
    """Add a resource type, or more actions to an existing one. Idempotent."""
    names = [resource_type, *actions]
    bad = [name for name in names if not isinstance(name, str) or not NAME_PATTERN.match(name)]
    if bad:
        raise ValueError(
            f"Resource types and actions are lower-case identifiers (e.g. 'break_glass'); got {bad!r}."
        )
    _vocabulary.setdefault(resource_type, set()).update(actions)


def resource_types() -> list[str]:
    return sorted(_vocabulary)


def actions_for(resource_type: str) -> list[str]:
    return sorted(_vocabulary.get(resource_type, ()))


def is_known(resource_type: str, action: str) -> bool:
    return action in _vocabulary.get(resource_type, ())


def all_actions() -> list[str]:
    return sorted(set().union(*_vocabulary.values()))
