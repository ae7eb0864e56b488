"""WSGI entry point for gunicorn: ``gunicorn gateway.wsgi:app``."""
import sys

from gateway.config import ConfigError

try:
    from gateway.app import create_app
    app = create_app()
except ConfigError as exc:
    for line in exc.problems:
        print(f"config error: {line}", file=sys.stderr)
    sys.exit(2)
