"""Console pages: inbox (filled in by its own change)."""
from gateway.console.blueprint import bp  # noqa: F401
