"""``gateway up``: one command that runs the whole gateway on this machine.

It starts embedded PostgreSQL and Valkey when DATABASE_URL / REDIS_URL are
unset, makes a keyring on first run, migrates, creates a demo account, then
supervises gunicorn, an RQ worker, an RQ worker for event webhooks and the sweeper. Ctrl-C (or SIGTERM) stops
the children first and the embedded servers last, so nothing is orphaned.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gateway.cli import DEMO_ACCOUNT, gunicorn_args
from gateway.config import ConfigError, load_settings


def _say(msg: str = "") -> None:
    print(msg, file=sys.stderr, flush=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_ready(url: str, procs: list[subprocess.Popen], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class _Stop(Exception):
    pass


def _raise_stop(*_):
    raise _Stop()


def run_up(port: int | None = None, host: str | None = None, data_dir: str | None = None) -> int:
    from gateway.embedded import EmbeddedServers, wait_gone

    started = time.monotonic()
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    env = dict(os.environ)
    data = Path(data_dir or env.get("GATEWAY_DATA_DIR") or "data").resolve()
    data.mkdir(parents=True, exist_ok=True)
    servers = EmbeddedServers(data)
    children: list[subprocess.Popen] = []
    code = 0
    try:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = servers.start_postgres()
            _say(f"embedded PostgreSQL running from {data / 'postgres'} (Unix socket only)")
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = servers.start_valkey()
            _say(f"embedded Valkey running on {env['REDIS_URL']}")
        if not env.get("GATEWAY_KEYRING_FILE") and not env.get("GATEWAY_MASTER_KEYS"):
            env["GATEWAY_KEYRING_FILE"] = str(_ensure_keyring(data / "keyring.json"))
        try:
            settings = load_settings(env)
        except ConfigError as exc:
            for line in exc.problems:
                _say(f"config error: {line}")
            return 2

        from gateway.migrate import migrate
        migrate(settings.database_url, log=_say)
        demo_key = _ensure_demo_account(settings)

        host = host or env.get("GATEWAY_BIND", "127.0.0.1")
        port = port or int(env.get("PORT") or env.get("GATEWAY_PORT") or 8000)
        if not _port_free(host, port):
            new = _free_port(host)
            _say(f"port {port} is taken; using {new}")
            port = new
        base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        sandbox_port = 8100 if _port_free("127.0.0.1", 8100) else _free_port("127.0.0.1")
        sandbox = _ensure_sandbox(settings, data, base_url, f"http://127.0.0.1:{sandbox_port}")
        admin_link = _demo_admin_link(settings, base_url)
        env["GATEWAY_SANDBOX_APP_SECRET"] = sandbox["app_secret"]
        # Every process writes its metrics here and a scrape of the web app adds them up; counts from an
        # earlier run would be summed in too, so the folder starts empty.
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data / "metrics"))
        from gateway.multiproc import prepare_dir
        prepare_dir(env["PROMETHEUS_MULTIPROC_DIR"], wipe=True)
        py = sys.executable
        for cmd in ([py, "-m", "gunicorn", *gunicorn_args(host, port)],
                    [py, "-m", "gateway.cli", "worker"],
                    [py, "-m", "gateway.cli", "worker", "webhooks"],
                    [py, "-m", "gateway.cli", "sweeper"],
                    [py, "-m", "gateway.cli", "sandbox", "serve", "--port", str(sandbox_port), "--gateway-url",
                     base_url, "--data-dir", str(data)]):
            # A session of their own: the terminal's Ctrl-C reaches only us, and
            # we stop them in order.
            children.append(subprocess.Popen(cmd, env=env, start_new_session=True))
        if not _wait_ready(base_url, children):
            _say("the gateway did not become ready; see the errors above")
            code = 1
            return code
        _say("")
        _say(f"gateway ready in {time.monotonic() - started:.1f}s at {base_url}")
        _say(f"  data folder: {data}")
        if settings.keyring_file:
            _say(f"  keyring: {settings.keyring_file}  (BACK IT UP: without it the data cannot be read)")
        if demo_key:
            _say(f"  demo account API key (shown once): {demo_key}")
            _say(f"  try: curl -H 'Authorization: Bearer {demo_key}' {base_url}/v1/account")
        else:
            _say(f"  demo account '{DEMO_ACCOUNT}' exists; its key was shown on first run "
                 f"(new one: gateway api-keys create --account <id> --name me --scope admin)")
        if admin_link:
            _say(f"  web console: sign in as {DEMO_ADMIN_EMAIL} with this one-time link: {admin_link}")
        else:
            _say(f"  web console: {base_url}/console (as {DEMO_ADMIN_EMAIL}; new link: gateway users invite "
                 f"--account {DEMO_ACCOUNT} --email {DEMO_ADMIN_EMAIL})")
        _say(f"  sandbox provider at {sandbox['sandbox_url']}; sandbox WhatsApp channel {sandbox['channel_id']}")
        _say("  play a customer: .venv/bin/gateway sandbox say --from +34600000001 \"Hola\"")
        _say("  Ctrl-C stops everything")
        while True:
            for p in children:
                if p.poll() is not None:
                    _say(f"a gateway process exited unexpectedly ({' '.join(p.args[2:4])}, code {p.returncode}); "
                         f"stopping")
                    code = 1
                    return code
            time.sleep(0.5)
    except _Stop:
        _say("stopping…")
        return code
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in children:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in children:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        pids = servers.pids
        servers.stop()
        wait_gone(pids)
        _say("stopped")


def _ensure_keyring(path: Path) -> Path:
    from gateway.crypto import Keyring
    if not path.exists():
        Keyring.generate().save(path)
        _say("")
        _say("*" * 78)
        _say(f"  A new master keyring was created at {path}")
        _say("  BACK IT UP NOW. Every phone number, name and message is encrypted under it;")
        _say("  if it is lost, that data cannot be recovered by anyone.")
        _say("*" * 78)
        _say("")
    return path


SANDBOX_PHONE_NUMBER_ID = "100000000000001"


def _ensure_sandbox(settings, data: Path, gateway_url: str, sandbox_url: str) -> dict:
    """The demo account's sandbox WhatsApp channel, pointed at this run's sandbox; its state in sandbox.json."""
    import json
    import secrets
    from gateway import accounts, channels, db, runtime
    path = data / "sandbox.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("app_secret", secrets.token_hex(16))
    state.setdefault("phone_number_id", SANDBOX_PHONE_NUMBER_ID)
    state.update(gateway_url=gateway_url, sandbox_url=sandbox_url)
    runtime.init(settings)
    try:
        with db.connection() as conn:
            account = accounts.find_account_by_name(conn, name=DEMO_ACCOUNT)
            found = conn.execute("SELECT id FROM channels WHERE account_id = %s AND kind = 'whatsapp' "
                                 "AND external_id = %s", (account["id"], state["phone_number_id"])).fetchone()
            creds = {"app_secret": state["app_secret"], "access_token": "sandbox-token",
                     "verify_token": secrets.token_hex(12)}
            if found is None:
                made = channels.create_channel(conn, account_id=account["id"], kind="whatsapp",
                                               name="Sandbox WhatsApp", external_id=state["phone_number_id"],
                                               group_id="SANDBOX_WABA", credentials=creds,
                                               settings={"api_base_url": sandbox_url}, actor="up")
                state["channel_id"] = str(made["id"])
            else:
                channels.update_channel(conn, account_id=account["id"], channel_id=found["id"], actor="up",
                                        settings={"api_base_url": sandbox_url}, status="active",
                                        credentials={"app_secret": state["app_secret"]})
                state["channel_id"] = str(found["id"])
    finally:
        db.close()
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)
    return state


DEMO_ADMIN_EMAIL = "admin@demo.local"


def _demo_admin_link(settings, base_url: str) -> str | None:
    """A one-time console sign-in link for the demo account's admin, while they have not chosen a password."""
    from gateway import accounts, db, runtime
    from gateway.console import invites, users
    runtime.init(settings)
    try:
        with db.connection() as conn:
            account = accounts.find_account_by_name(conn, name=DEMO_ACCOUNT)
            user = users.find_by_email(conn, DEMO_ADMIN_EMAIL)
            if user is not None and (user["has_password"] or user["account_id"] != account["id"]):
                return None
            _, token, _ = invites.invite(conn, account_id=account["id"], email=DEMO_ADMIN_EMAIL, role="admin",
                                         name="Demo admin", actor="up")
            return invites.link_url(base_url, token)
    finally:
        db.close()


def _ensure_demo_account(settings) -> str | None:
    """Create the demo account with an admin key on first run; returns the key then, else None."""
    from gateway import accounts, db, runtime
    runtime.init(settings)
    try:
        with db.connection() as conn:
            if accounts.find_account_by_name(conn, name=DEMO_ACCOUNT) is not None:
                return None
            account = accounts.create_account(conn, name=DEMO_ACCOUNT, actor="up")
            _, key = accounts.create_api_key(conn, account_id=account["id"], name="demo-admin",
                                             scopes=["admin"], actor="up")
            return key
    finally:
        db.close()
