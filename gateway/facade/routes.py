"""Every facade view module, imported so their routes are on the blueprint."""
from gateway.facade import message_views  # noqa: F401  (routes on bp)
from gateway.facade import media_views  # noqa: F401  (routes on bp)
from gateway.facade import template_views  # noqa: F401  (routes on bp)
from gateway.facade.views import bp

__all__ = ["bp"]
