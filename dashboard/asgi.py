"""ASGI entry point: HTTP through Django (static files and the join-token routes in front of
its full middleware chain: parley/asgi.py), websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from branding.middleware import CustomDomainOriginValidator  # noqa: E402
from conferences.routing import websocket_urlpatterns  # noqa: E402
from dashboard.routing import websocket_urlpatterns as dashboard_websockets  # noqa: E402
from parley.asgi import LeanRoutes, StaticFiles  # noqa: E402
from parley.pages import PageRoutes  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files before Django; the join-token routes through a lean middleware chain;
        # the join page's routes on a fixed thread pool (parley/pages.py).
        "http": StaticFiles(LeanRoutes(PageRoutes(django_asgi_app))),
        # ALLOWED_HOSTS, plus tenants' verified custom domains (their join pages' sockets).
        "websocket": CustomDomainOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns + dashboard_websockets))
        ),
    }
)
