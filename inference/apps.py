from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Inference"

    def ready(self):
        from portal.navigation import NavEntry, register

        register(
            NavEntry(
                key="models",
                label="Models",
                url_name="inference:model_list",
                description="Registered local and remote models, the playground and the OpenAI-compatible API.",
                order=60,
            )
        )
