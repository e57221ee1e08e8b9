"""The LLM layer's words in the access policy (autodiscovered by the access app).

model:NAME, e.g. model:medical_qa: predict (serve), fine_tune (LoRA jobs), promote (adapters),
register (add or replace a model directory in the registry from the portal or the API).
"""

from access.actions import register

register("model", ["predict", "fine_tune", "promote", "register"])
