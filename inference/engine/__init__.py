"""The engines. The suite never fetches from a hub, whatever the environment says: the hub's
offline switches are set here, before any engine module imports transformers (huggingface_hub
reads them once, at its import)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
