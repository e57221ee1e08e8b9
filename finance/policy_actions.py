"""The finance (AML) app's words in the access policy (autodiscovered by the access app)."""

from access.actions import register

register("transaction", ["view", "screen"])
register("alert", ["view", "triage", "close"])
register("case", ["view", "triage", "close", "sar", "share"])
register("sar", ["view", "sar"])
# Scenario (rule) versions: propose a new version, approve (activate) another officer's proposal.
register("scenario", ["view", "propose", "approve"])
