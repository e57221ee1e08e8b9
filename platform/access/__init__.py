"""The access policy: one decision function for RBAC, ABAC and per-object grants.

Public entry points (import from their modules; this package only re-exports the exception so
`except access.PolicyDenied` works without importing the engine at start-up):

- access.decisions.decide(user, action, resource) -> Decision   pure, explains itself
- access.enforcement.check(user, action, resource)               raises PolicyDenied, trails denials
- access.querysets.restrict(queryset, user, action)             the same rules as a Q filter
- access.drf.PolicyPermission, access.web.PolicyRequiredMixin, access.web.policy_required
- access.services.grant / revoke                                per-object grants (django-guardian)
- access.policy.reload()                                        re-read the policy file
See POLICY.md for the policy language.
"""

from access.errors import PolicyDenied

__all__ = ["PolicyDenied"]
