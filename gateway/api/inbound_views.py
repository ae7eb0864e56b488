"""REST views for channels, threads, messages, media and contact merges (the inbound read API)."""
from __future__ import annotations

import psycopg.errors
from flask import Response, request

from gateway import channels, inbound_review, media, merges, messages, notices, thread_status, threads
from gateway.api import paging
from gateway.api.schemas import ChannelCreate, ChannelUpdate, ContactRef
from gateway.api.views import bp
from gateway.http import api, json_body, parse_uuid
from gateway.problems import Problem


def _channel_or_404(conn, principal, channel_id):
    found = channels.get_channel(conn, account_id=principal.account_id, channel_id=parse_uuid(channel_id, "channel"))
    if found is None:
        raise Problem(404, "Not Found", f"no channel with id {channel_id} in this account")
    return found


@bp.post("/channels")
@api(scope="admin")
def create_channel(conn, principal):
    body = json_body(ChannelCreate())
    try:
        with conn.transaction():
            row = channels.create_channel(conn, account_id=principal.account_id, kind=body["kind"], name=body["name"],
                                          external_id=body["external_id"], group_id=body.get("group_id"),
                                          credentials=body["credentials"], settings=body["settings"],
                                          actor=principal.actor)
    except channels.ChannelError as exc:
        raise Problem(422, "Validation Failed", str(exc), slug="validation-failed",
                      errors=[{"pointer": "/credentials", "detail": str(exc)}]) from None
    except psycopg.errors.UniqueViolation:
        raise Problem(409, "Conflict", f"a {body['kind']} channel with external id {body['external_id']} is already "
                      "registered (in this or another account); each number or page belongs to one channel",
                      slug="channel-exists") from None
    return row, 201


@bp.get("/channels")
@api(scope="admin")
def list_channels(conn, principal):
    return {"data": channels.list_channels(conn, account_id=principal.account_id)}


@bp.get("/channels/summary")
@api(scope="messages:read")
def list_channel_summaries(conn, principal):
    """Every channel of the account by id, kind, name and status only: what a key that sends, lists templates
    or runs campaigns needs to pick a channel. The whole channel (settings, health, which credentials are
    set) stays with admin keys."""
    return {"data": channels.summaries(conn, account_id=principal.account_id)}


@bp.get("/channels/<channel_id>")
@api(scope="admin")
def get_channel(conn, principal, channel_id):
    return _channel_or_404(conn, principal, channel_id)


@bp.patch("/channels/<channel_id>")
@api(scope="admin")
def update_channel(conn, principal, channel_id):
    body = json_body(ChannelUpdate())
    try:
        row = channels.update_channel(conn, account_id=principal.account_id,
                                      channel_id=parse_uuid(channel_id, "channel"), actor=principal.actor, **body)
    except channels.ChannelError as exc:
        raise Problem(422, "Validation Failed", str(exc), slug="validation-failed",
                      errors=[{"pointer": "/credentials", "detail": str(exc)}]) from None
    if row is None:
        raise Problem(404, "Not Found", f"no channel with id {channel_id} in this account")
    return row


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@bp.get("/threads")
@api(scope="messages:read")
def list_threads(conn, principal):
    """The inbox: filters status (comma-separated), team_id, assignee (agent id or none), channel_id, contact_id,
    tag, unread, window (open|closed); sort activity (default) or waiting; cursor pagination."""
    limit = paging.limit()
    args = request.args
    statuses = [s for s in (args.get("status") or "").split(",") if s]
    for s in statuses:
        if s not in thread_status.STATUSES:
            raise Problem(400, "Bad Filter", f"status is one or more of {', '.join(thread_status.STATUSES)}, "
                          "comma-separated", slug="bad-filter")
    sort = args.get("sort", "activity")
    if sort not in threads.SORTS:
        raise Problem(400, "Bad Filter", "sort is activity (newest activity first) or waiting (longest waiting for "
                      "an answer first)", slug="bad-filter")
    window = args.get("window")
    if window not in (None, "open", "closed"):
        raise Problem(400, "Bad Filter", "window is open or closed", slug="bad-filter")
    unread = args.get("unread")
    if unread is not None and unread not in _TRUE + _FALSE:
        raise Problem(400, "Bad Filter", "unread is true or false", slug="bad-filter")
    assignee = args.get("assignee")
    contact, channel, team = args.get("contact_id"), args.get("channel_id"), args.get("team_id")
    rows = threads.list_threads(
        conn, account_id=principal.account_id, limit=limit, before=paging.decode("before"),
        contact_id=parse_uuid(contact, "contact") if contact else None,
        channel_id=parse_uuid(channel, "channel") if channel else None, statuses=statuses,
        team_id=parse_uuid(team, "team") if team else None,
        assignee=None if assignee is None else "none" if assignee == "none" else parse_uuid(assignee, "agent"),
        tag=args.get("tag") or None, unread=None if unread is None else unread in _TRUE, window=window, sort=sort)
    nxt = None
    if len(rows) == limit:
        last = rows[-1]
        nxt = paging.encode(last["last_inbound_at"] if sort == "waiting" else last["last_activity_at"], last["id"])
    return {"data": rows, "next": nxt}


@bp.post("/threads/<thread_id>/read")
@api(scope="messages:send")
def mark_thread_read(conn, principal, thread_id):
    """An agent read the thread: its unread count goes to 0 (no read receipt goes to the customer)."""
    row = thread_status.mark_read(conn, account_id=principal.account_id, thread_id=parse_uuid(thread_id, "thread"))
    if row is None:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    return {"thread_id": row["id"], "unread_count": row["unread_count"], "read_at": row["agent_read_at"]}


def _thread_or_404(conn, principal, thread_id):
    found = threads.get_thread(conn, account_id=principal.account_id, thread_id=parse_uuid(thread_id, "thread"))
    if found is None:
        raise Problem(404, "Not Found", f"no thread with id {thread_id} in this account")
    return found


@bp.get("/threads/<thread_id>")
@api(scope="messages:read")
def get_thread(conn, principal, thread_id):
    return _thread_or_404(conn, principal, thread_id)


@bp.get("/threads/<thread_id>/messages")
@api(scope="messages:read")
def thread_messages(conn, principal, thread_id):
    """Oldest first. No cursor: the first page. ``after``: the next page forward. ``before``: the page before
    (``before=latest`` starts from the newest messages)."""
    thread = _thread_or_404(conn, principal, thread_id)
    limit = paging.limit(default=100)
    latest = request.args.get("before") == "latest"
    before = None if latest else paging.decode("before")
    after = paging.decode("after")
    if (before or latest) and after:
        raise Problem(400, "Bad Cursor", "give either 'before' or 'after', not both", slug="bad-cursor")
    rows = messages.list_thread_messages(conn, account_id=principal.account_id, thread_id=thread["id"],
                                         limit=limit, before=before, after=after, latest=latest)
    full = len(rows) == limit
    backwards = before is not None or latest
    return {
        "data": rows,
        # 'previous' pages toward older messages, 'next' toward newer ones; null when there is nothing there.
        "previous": (paging.encode(rows[0]["occurred_at"], rows[0]["id"])
                     if rows and ((backwards and full) or after is not None) else None),
        "next": (paging.encode(rows[-1]["occurred_at"], rows[-1]["id"])
                 if rows and ((not backwards and full) or before is not None) else None),
    }


@bp.get("/media/<media_id>")
@api(scope="messages:read")
def get_media(conn, principal, media_id):
    found = media.content(conn, account_id=principal.account_id, media_id=parse_uuid(media_id, "media"))
    if found is None:
        raise Problem(404, "Not Found", f"no media with id {media_id} in this account")
    if found["data"] is None:
        detail = (f"the file failed to download: {found['last_error']}; fix the cause, then "
                  f"POST /v1/media/{media_id}/retry" if found["state"] == "failed"
                  else f"the file is not downloaded yet (attempt {found['attempts']}); retry shortly")
        raise Problem(409 if found["state"] == "failed" else 425, "Media Not Available", detail,
                      slug="media-not-available", headers={"Retry-After": "5"} if found["state"] != "failed" else None)
    headers = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}
    if found["filename"]:
        safe = found["filename"].replace('"', "").replace("\r", "").replace("\n", "")
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return Response(found["data"], 200, mimetype=found["mime_type"] or "application/octet-stream", headers=headers)


@bp.post("/media/<media_id>/retry")
@api(scope="messages:read")
def retry_media(conn, principal, media_id):
    mid = parse_uuid(media_id, "media")
    if media.retry(conn, account_id=principal.account_id, media_id=mid) is None:
        raise Problem(409, "Conflict", "only a failed download can be retried; this one is stored, pending or unknown",
                      slug="not-failed")
    conn.commit()
    media.enqueue_downloads(principal.account_id, [mid])
    return {"id": mid, "state": "pending"}, 202


@bp.post("/contacts/<contact_id>/merge")
@api(scope="contacts:write")
def merge_contact(conn, principal, contact_id):
    """Merge the contact named in the body into this one (this one survives)."""
    body = json_body(ContactRef())
    try:
        done = merges.merge(conn, account_id=principal.account_id, survivor_id=parse_uuid(contact_id, "contact"),
                            merged_id=body["contact_id"], actor=principal.actor)
    except LookupError:
        raise Problem(404, "Not Found", "one of the two contacts does not exist in this account") from None
    except merges.MergeError as exc:
        raise Problem(409, "Conflict", str(exc), slug="merge-refused") from None
    return done, 201


@bp.post("/contacts/<contact_id>/unmerge")
@api(scope="contacts:write")
def unmerge_contact(conn, principal, contact_id):
    body = json_body(ContactRef())
    done = merges.unmerge(conn, account_id=principal.account_id, survivor_id=parse_uuid(contact_id, "contact"),
                          merged_id=body["contact_id"], actor=principal.actor)
    if done is None:
        raise Problem(404, "Not Found", f"contact {body['contact_id']} is not merged into {contact_id}",
                      slug="not-merged")
    return done


@bp.get("/inbound-events/review")
@api(scope="admin")
def events_for_review(conn, principal):
    """Webhook bodies stored and acknowledged but not fully understood (never their content)."""
    return {"data": inbound_review.flagged(conn, account_id=principal.account_id, limit=paging.limit())}


@bp.get("/notices")
@api(scope="admin")
def list_notices(conn, principal):
    """Provider notices (template, quality, account, preference, call updates), newest first."""
    return {"data": notices.list_notices(conn, account_id=principal.account_id, topic=request.args.get("topic"),
                                         limit=paging.limit())}
