"""The web console at /console: server-rendered pages that read and write through the REST API itself
(gateway/console/api_client.py), as the signed-in person with their role's scopes."""
from gateway.console import signin_views  # noqa: F401  (routes on bp)
from gateway.console import campaign_views, contact_views, inbox_views  # noqa: F401  (routes on bp)
from gateway.console import report_views, settings_views, template_views  # noqa: F401  (routes on bp)
from gateway.console import settings_automation_views, settings_user_views  # noqa: F401  (routes on bp)
from gateway.console.blueprint import bp, not_found_page

__all__ = ["bp", "not_found_page"]
