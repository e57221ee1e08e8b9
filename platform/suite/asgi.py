import os

from django.core.asgi import get_asgi_application

from suite import sourceroots  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")
application = get_asgi_application()
