import os

from django.core.wsgi import get_wsgi_application

from suite import sourceroots  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")
application = get_wsgi_application()
