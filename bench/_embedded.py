"""Helper for benches (not a bench): a throwaway embedded PostgreSQL and Valkey, migrated, with a fresh
keyring, for the length of a ``with`` block; everything is stopped and deleted afterwards."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def embedded_gateway(prefix: str = "gw-bench-"):
    """Yields the temporary folder; DATABASE_URL, REDIS_URL and GATEWAY_KEYRING_FILE point at it meanwhile."""
    from gateway.crypto import Keyring
    from gateway.embedded import EmbeddedServers
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    servers = EmbeddedServers(tmp / "data")
    try:
        os.environ.update({"DATABASE_URL": servers.start_postgres("bench"), "REDIS_URL": servers.start_valkey(),
                           "GATEWAY_KEYRING_FILE": str(Keyring.generate().save(tmp / "keyring.json")),
                           "GATEWAY_LOG_LEVEL": "WARNING"})
        os.environ.pop("GATEWAY_MASTER_KEYS", None)
        from gateway import db, runtime
        from gateway.migrate import migrate
        migrate(os.environ["DATABASE_URL"], log=lambda m: None)
        runtime.init()
        try:
            yield tmp
        finally:
            db.close()
    finally:
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)
