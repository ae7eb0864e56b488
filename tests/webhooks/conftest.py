"""End-to-end helpers: register channels over the API, post signed webhooks, run the real worker, read back."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from urllib.parse import urlencode

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
META_SECRET = "meta-app-secret-for-tests"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token-for-tests"


def meta_raw(doc) -> bytes:
    # Meta's wire form: compact, non-ASCII escaped as \uXXXX (that is what it signs).
    return doc if isinstance(doc, bytes) else json.dumps(doc, separators=(",", ":")).encode("ascii")


def meta_signature(raw: bytes, secret: str = META_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def twilio_signature(url: str, params: dict, token: str = TWILIO_TOKEN) -> str:
    payload = url + "".join(k + str(params[k]) for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


class Inbox:
    """One account seen from outside: its admin API, its channels, the webhooks a provider would post."""

    def __init__(self, client, account_id, key):
        self.client, self.account_id, self.key = client, account_id, key
        self.channels: dict[tuple[str, str], dict] = {}

    def api(self, method: str, path: str, **kw):
        headers = {"Authorization": f"Bearer {self.key}", **kw.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kw)

    def channel(self, kind: str, external_id: str | None = None, **extra) -> dict:
        external_id = external_id or f"{kind[:2]}-{secrets.token_hex(6)}"
        if (kind, external_id) in self.channels:
            return self.channels[(kind, external_id)]
        creds = {
            "whatsapp": {"app_secret": META_SECRET, "access_token": "EAAG-test", "verify_token": f"vt-{external_id}"},
            "messenger": {"app_secret": META_SECRET, "page_access_token": "EAAG-page",
                          "verify_token": f"vt-{external_id}"},
            "instagram": {"app_secret": META_SECRET, "page_access_token": "EAAG-ig", "verify_token": f"vt-{external_id}"},
            "twilio": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
        }[kind]
        body = {"kind": kind, "name": f"{kind} test", "external_id": external_id, "credentials": creds, **extra}
        r = self.api("POST", "/v1/channels", json=body)
        assert r.status_code == 201, r.json
        self.channels[(kind, external_id)] = r.json
        return r.json

    def post_meta(self, kind: str, doc, secret: str = META_SECRET):
        raw = meta_raw(doc)
        return self.client.post(f"/webhooks/{kind}", data=raw, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(raw, secret)})

    def post_twilio(self, params: dict, token: str = TWILIO_TOKEN):
        url = "http://localhost/webhooks/twilio"
        return self.client.post(url, data=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(url, params, token)})

    def drain(self, queues=("inbound",)):
        from rq import SimpleWorker
        from gateway import inbound, jobs, runtime
        inbound.flush_enqueues()    # the receiver hands jobs to Redis just after its answer
        SimpleWorker([jobs.queue(q) for q in queues], connection=runtime.redis_client()).work(
            burst=True, with_scheduler=False)

    def threads(self, **params) -> list[dict]:
        out, cursor = [], None
        while True:
            q = dict(params, limit=200, **({"before": cursor} if cursor else {}))
            page = self.api("GET", "/v1/threads?" + urlencode(q)).json
            out += page["data"]
            cursor = page["next"]
            if not cursor:
                return out

    def messages(self, thread_id) -> list[dict]:
        out, cursor = [], None
        while True:
            page = self.api("GET", f"/v1/threads/{thread_id}/messages?limit=200"
                            + (f"&after={cursor}" if cursor else "")).json
            out += page["data"]
            cursor = page["next"]
            if not cursor:
                return out

    def all_messages(self) -> dict[str, dict]:
        """Every message of the account by provider message id."""
        return {m["provider_message_id"]: m for t in self.threads() for m in self.messages(t["id"])}

    def events(self, conn) -> list[dict]:
        return conn.execute("SELECT id, processed_at, attempts, last_error, review_reasons FROM inbound_events "
                            "WHERE account_id = %s ORDER BY received_at, id", (self.account_id,)).fetchall()


def make_inbox(client) -> Inbox:
    from gateway import accounts, db
    with db.connection() as c:
        account = accounts.create_account(c, name=f"inbox-{secrets.token_hex(3)}", actor="test")
        _, key = accounts.create_api_key(c, account_id=account["id"], name="admin", scopes=["admin"], actor="test")
    return Inbox(client, account["id"], key)


@pytest.fixture
def inbox(client):
    return make_inbox(client)
