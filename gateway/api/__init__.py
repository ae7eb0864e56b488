"""The REST API under /v1: JSON in and out, RFC 9457 problems on error."""
from gateway.api.views import bp

__all__ = ["bp"]
