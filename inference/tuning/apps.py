from django.apps import AppConfig


class TuningConfig(AppConfig):
    name = "inference.tuning"
    label = "tuning"
    verbose_name = "Fine-tuning"

    def ready(self):
        from portal.navigation import NavEntry, policy_allows, register

        register(
            NavEntry(
                key="tuning",
                label="Fine-tuning",
                url_name="tuning:job_list",
                allowed=policy_allows("view", "portal:models"),
                description="LoRA fine-tune jobs on the data adapters you may use, with optional differential "
                "privacy; evaluate, promote and roll back adapters.",
                order=65,
            )
        )
