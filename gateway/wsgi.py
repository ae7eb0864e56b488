"""WSGI entry point for gunicorn: ``gunicorn gateway.wsgi:app``."""
import gc
import os
import sys

from gateway.config import ConfigError

# The group committer's writer thread must get the interpreter back as soon as PostgreSQL answers;
# at the default 5 ms switch interval every request thread's work delays each commit by milliseconds.
sys.setswitchinterval(float(os.environ.get("GATEWAY_SWITCH_INTERVAL", "0.0005")))

try:
    from gateway.app import create_app
    app = create_app()
    # Everything imported so far lives as long as the process: keep the collector from re-scanning
    # those objects on every full collection (it showed as a large share of per-request CPU).
    gc.freeze()
except ConfigError as exc:
    for line in exc.problems:
        print(f"config error: {line}", file=sys.stderr)
    sys.exit(2)
