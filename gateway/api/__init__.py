"""The REST API under /v1: JSON in and out, RFC 9457 problems on error."""
from gateway.api import import_views, inbound_views, message_views, template_views, upload_views  # noqa: F401  (routes on bp)
from gateway.api import privacy_views  # noqa: F401  (routes on bp)
from gateway.api import consent_views  # noqa: F401  (routes on bp)
from gateway.api import assistant_views  # noqa: F401  (routes on bp)
from gateway.api import automation_views  # noqa: F401  (routes on bp)
from gateway.api import survey_views  # noqa: F401  (routes on bp)
from gateway.api import campaign_views, report_views  # noqa: F401  (routes on bp)
from gateway.api import routing_views  # noqa: F401  (routes on bp)
from gateway.api import crm_views  # noqa: F401  (routes on bp)
from gateway.api import event_views  # noqa: F401  (routes on bp)
from gateway.api import webhook_endpoint_views  # noqa: F401  (routes on bp)
from gateway.api.views import bp

__all__ = ["bp"]
