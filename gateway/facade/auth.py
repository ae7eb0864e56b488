"""The facade's ``@graph(scope)``: the REST API's authentication and transaction, with Meta's error envelope.

The access token is a gateway API key (``Authorization: Bearer gwk_…``, or ``access_token`` in the query as
Graph also takes it); the phone-number id is the external id of one of that key's account's WhatsApp channels.
"""
from __future__ import annotations

import functools
import re
import time

from flask import g, request

from gateway.accounts import authenticate
from gateway.http import authenticated
from gateway.facade.errors import GraphError, invalid_parameter, missing_scope, no_such_object, unauthorized

_VERSION = re.compile(r"^v\d{1,3}(\.\d{1,2})?$")


def _principal(conn):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() in ("bearer", "oauth") else request.args.get("access_token", "")
    if not token:
        raise GraphError(2500, "An active access token must be used to query information about the current user",
                         "send a gateway API key as 'Authorization: Bearer <key>' (made with `gateway api-keys "
                         "create`); it replaces the Meta access token", status=401)
    principal = authenticate(conn, token)
    if principal is None:
        raise unauthorized("the API key is unknown or has been revoked; create a new one with `gateway api-keys "
                           "create` and use it as the access token")
    return principal


def graph(scope: str):
    """Authenticate, check the scope and the Graph version, and run the view in one transaction."""
    def wrap(view):
        @functools.wraps(view)
        def inner(version, **kwargs):
            if not _VERSION.match(version):
                raise invalid_parameter(f"'{version}' is not a Graph API version; use the one your integration "
                                        "uses, e.g. v21.0 (any version is served alike)")
            return authenticated(_principal, lambda conn, principal: _serve(conn, principal, kwargs))

        def _serve(conn, principal, kwargs):
            g.account_id = principal.account_id
            if not principal.allows(scope):
                conn.commit()   # keep last_used_at
                raise missing_scope(scope)
            return view(conn=conn, principal=principal, **kwargs)

        inner.required_scope = scope
        return inner
    return wrap


# (account, phone-number id) → (read at, channel row). A send reads the channel's status afresh in the send gate;
# this serves what a request needs before it (the id, the WABA, the rate), one query fewer per send.
_CHANNELS: dict = {}
CHANNEL_TTL_S = 1.0


def whatsapp_channel(conn, account_id, phone_number_id: str, method: str = "post") -> dict:
    """The account's WhatsApp channel whose phone-number id this is; another account's is 'does not exist'."""
    key = (str(account_id), phone_number_id)
    hit = _CHANNELS.get(key)
    if hit is not None and time.monotonic() - hit[0] < CHANNEL_TTL_S:
        return hit[1]
    row = conn.execute("SELECT id, kind, external_id, group_id, status, settings FROM channels "
                       "WHERE account_id = %s AND kind = 'whatsapp' AND external_id = %s",
                       (account_id, phone_number_id)).fetchone()
    if row is None:
        raise no_such_object(phone_number_id, method)
    if len(_CHANNELS) > 10_000:
        _CHANNELS.clear()
    _CHANNELS[key] = (time.monotonic(), row)
    return row
