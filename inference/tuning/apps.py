from django.apps import AppConfig

# The imports sit in ready(): Django imports apps.py before the app registry is ready, and the
# portal's registries (navigation, home panels) load models.


class TuningConfig(AppConfig):
    name = "inference.tuning"
    label = "tuning"
    verbose_name = "Fine-tuning"

    def ready(self):
        from inference.tuning import home
        from portal.homes import HomePanel, register_panel
        from portal.navigation import NavEntry, policy_allows, register

        register(
            NavEntry(
                key="tuning",
                label="Fine-tuning",
                url_name="tuning:job_list",
                description="LoRA fine-tune jobs on the data adapters you may use, with optional differential "
                "privacy; evaluate, promote and roll back adapters.",
                order=65,
            )
        )
        register_panel(
            HomePanel(
                key="tuning-recent",
                title="Recent fine-tune jobs",
                rows=home.recent_jobs,
                order=30,
                more_url_name="tuning:job_list",
                empty_text="No job yet: start one from Fine-tuning.",
                allowed=policy_allows("view", "portal:tuning"),
            )
        )
