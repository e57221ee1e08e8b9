from django.apps import AppConfig

# The imports sit in ready(): Django imports apps.py before the app registry is ready, and the
# portal's registries (navigation, home panels) load models.


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Inference"

    def ready(self):
        from portal.navigation import NavEntry, register
        from vault.rotation import register_format1_context

        # Generation texts are sealed with this context (inference.services): rotate_keys re-seals
        # blobs of the vault's format 1 with it.
        register_format1_context("inference.Generation.sealed_text", b"inference.generation")

        register(
            NavEntry(
                key="models",
                label="Models",
                url_name="inference:model_list",
                description="Registered local and remote models, the playground and the OpenAI-compatible API.",
                order=60,
            )
        )
