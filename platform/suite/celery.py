"""The Celery application. Tasks are autodiscovered from every installed app's tasks.py."""

import os

from celery import Celery

from suite import sourceroots  # noqa: F401  (puts the project and platform/ on sys.path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")

app = Celery("suite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
