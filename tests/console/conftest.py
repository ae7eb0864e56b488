"""The console's tests: a live gateway (this suite's app on a real HTTP port, real RQ workers and the sweeper
as separate processes, the sandbox provider over HTTP) and Debian's Chromium driven by Playwright.

Browser tests need /usr/bin/chromium (Debian's ``chromium`` package; Playwright downloads no browser here).
Without it they are skipped, saying so; the console's server-side tests run regardless.
Screenshots go to $GATEWAY_SCREENSHOT_DIR when set (docs/screenshots is made that way), else a temp folder.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium")
APP_SECRET = "console-sandbox-app-secret"
PASSWORD = "console-test-password"
# Chromium as the machine's probe runs it: no sandbox as root, and none of the background connections that a
# closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@dataclass
class Live:
    url: str
    sandbox: object
    procs: list = field(default_factory=list)

    @property
    def sandbox_url(self) -> str:
        return self.sandbox.url


@pytest.fixture(scope="module")
def live(app):
    """The gateway serving HTTP with its workers, sweeper and the sandbox, for one test module. Per module, not
    per package: these workers take jobs from the suite's queues, and the other packages' tests drain those
    themselves, so none may outlive the console's modules (a package-scoped fixture in a folder without
    __init__.py lasts to the end of the session)."""
    from gateway import db
    from gateway.sandbox import start
    db.close()   # a fresh pool: an earlier test may have cut every backend
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    sandbox = start(gateway_url=url, app_secret=APP_SECRET, status_delay_ms=300)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_SWEEP_INTERVAL": "0.5", "GATEWAY_SEND_BACKOFF_S": "0.2",
           "GATEWAY_LOG_LEVEL": "WARNING"}
    logs = Path(tempfile.mkdtemp(prefix="gw-console-logs-"))
    procs = []
    for name, argv in (("worker", ["worker"]), ("webhooks", ["worker", "webhooks"]), ("sweeper", ["sweeper"])):
        out = open(logs / f"{name}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway.cli", *argv], cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    running = Live(url, sandbox, procs)
    yield running
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    sandbox.stop()
    server.shutdown()
    shutil.rmtree(logs, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's packages chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver) to run the browser tests")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    folder = Path(os.environ.get("GATEWAY_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="gw-console-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _call(url: str, method: str = "GET", doc=None, headers: dict | None = None):
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            body = r.read()
            return r.status, (json.loads(body) if body else None)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, (json.loads(body) if body[:1] in (b"{", b"[") else body.decode())


class World:
    """One account on the live gateway: its admin API key, a sandbox WhatsApp channel, console users of each
    role (password PASSWORD), and a customer to play."""

    def __init__(self, live: Live, label: str = "console"):
        from gateway import accounts, db
        from gateway.console import users
        self.live = live
        with db.connection() as conn:
            self.account = accounts.create_account(conn, name=f"{label}-{secrets.token_hex(3)}", actor="test")
            _, self.key = accounts.create_api_key(conn, account_id=self.account["id"], name="admin",
                                                  scopes=["admin"], actor="test")
            self.users = {}
            for role in ("agent", "supervisor", "admin"):
                email = f"{role}-{secrets.token_hex(4)}@{label}.example"
                self.users[role] = users.create_user(conn, account_id=self.account["id"], email=email,
                                                     name=f"{role.title()} {label.title()}", role=role,
                                                     actor="test", password=PASSWORD)
        self.phone_number_id = str(10**14 + secrets.randbelow(10**14))
        status, self.channel = self.api("POST", "/v1/channels", {
            "kind": "whatsapp", "name": "WhatsApp ES", "external_id": self.phone_number_id, "group_id": "WABA-" +
            self.phone_number_id, "credentials": {"app_secret": APP_SECRET, "access_token": "EAAG-console",
                                                  "verify_token": "vt-" + self.phone_number_id},
            "settings": {"api_base_url": live.sandbox_url, "pair_interval_s": 0}})
        assert status == 201, self.channel

    @property
    def id(self):
        return self.account["id"]

    def api(self, method: str, path: str, doc=None):
        return _call(self.live.url + path, method, doc, {"Authorization": f"Bearer {self.key}"})

    def say(self, phone: str, text: str, name: str = "Lucía Gómez") -> None:
        """The customer ``phone`` writes ``text`` to the channel, through the sandbox (a signed webhook)."""
        status, body = _call(self.live.sandbox_url + "/_sandbox/say", "POST", {
            "from": phone, "text": text, "name": name, "phone_number_id": self.phone_number_id,
            "gateway_url": self.live.url, "app_secret": APP_SECRET})
        assert status == 200 and body["status"] == 200, body

    def wait_api(self, path: str, predicate, timeout: float = 20.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            status, last = self.api("GET", path)
            if status == 200 and predicate(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last answer: {str(last)[:500]}")


@pytest.fixture
def world(live):
    return World(live)


def csrf_of(page) -> str:
    """The CSRF token in a console page (a test client response, or its text)."""
    text = page if isinstance(page, str) else page.get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def session_in(client, user: dict, password: str = PASSWORD, next_path: str = "/console/inbox") -> str:
    """Sign ``client`` (a Flask test client) in through the sign-in form, as a browser would; returns the
    session's CSRF token, read from the ``next_path`` page."""
    form = client.get(f"/console/signin?next={next_path}")
    r = client.post("/console/signin", data={"email": user["email"], "password": password, "csrf_token": csrf_of(form),
                                             "next": next_path})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return csrf_of(client.get(next_path))


def sign_in(page, live: Live, user: dict, password: str = PASSWORD, next_path: str = "/console/inbox"):
    page.goto(f"{live.url}/console/signin?next={next_path}")
    page.get_by_label("Email").fill(user["email"])
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(live.url + next_path.split("?")[0])))
    return page
