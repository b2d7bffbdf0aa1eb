"""ASGI entry point: gatehouse serves project.asgi:application (detected as ASGI)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

application = get_asgi_application()
