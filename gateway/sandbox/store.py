"""In-memory state of one sandbox: what it received, media, templates, Twilio message resources, counters.

Everything is bounded (oldest dropped first) and guarded by one lock held only for
dict/deque operations, so request handlers stay cheap.
"""
from __future__ import annotations

import collections
import hashlib
import itertools
import threading
import time
from typing import Any, Callable

from gateway.sandbox import ids


def now_ms() -> float:
    """Monotonic milliseconds (CLOCK_MONOTONIC: comparable with time.monotonic() in other processes)."""
    return round(time.monotonic() * 1000, 3)


class Store:
    def __init__(self, *, history_max: int = 100_000, media_max_bytes: int = 256 * 1024 * 1024,
                 resources_max: int = 100_000):
        self.lock = threading.Lock()
        self.history_max = history_max
        self.media_max_bytes = media_max_bytes
        self.resources_max = resources_max
        self.started = time.monotonic()
        self.clear_all()

    def clear_all(self) -> None:
        with self.lock:
            self.messages: collections.deque = collections.deque(maxlen=self.history_max)
            self._seq = itertools.count(1)
            self.last_seq = 0
            self.by_provider_id: dict[str, dict] = {}
            self.media: collections.OrderedDict[str, dict] = collections.OrderedDict()
            self.media_bytes = 0
            self.templates: dict[str, dict] = {}
            self.twilio: collections.OrderedDict[str, dict] = collections.OrderedDict()
            self.counts: collections.Counter = collections.Counter()

    # -- received requests ---
    def record(self, rec: dict) -> dict:
        """Append one received send request; gives it ``seq``. ``rec['received_at']`` is set by the caller."""
        # Keys the callback workers fill in later exist from the start: a listing being serialised
        # concurrently then only ever sees values change, never the dict grow.
        rec.setdefault("callback_status", None)
        rec.setdefault("callback_http_status", None)
        with self.lock:
            seq = next(self._seq)
            rec["seq"] = seq
            self.last_seq = seq
            if len(self.messages) == self.messages.maxlen:
                old = self.messages[0]
                pid = old.get("provider_message_id")
                if pid and self.by_provider_id.get(pid) is old:
                    del self.by_provider_id[pid]
            self.messages.append(rec)
            pid = rec.get("provider_message_id")
            if pid:
                self.by_provider_id[pid] = rec
        return rec

    def count(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.counts[key] += 1

    def list_messages(self, *, since: float | None = None, after_seq: int | None = None,
                      provider: str | None = None, channel_id: str | None = None, recipient: str | None = None,
                      accepted: bool | None = None, limit: int | None = None) -> tuple[list[dict], int]:
        with self.lock:
            items = list(self.messages)
            last = self.last_seq
        out = []
        for rec in items:
            if after_seq is not None and rec["seq"] <= after_seq:
                continue
            if since is not None and rec["received_at"] <= since:
                continue
            if provider and rec["provider"] != provider:
                continue
            if channel_id and rec.get("channel_id") != channel_id:
                continue
            if recipient and rec.get("recipient") != recipient:
                continue
            if accepted is not None and (200 <= rec["http_status"] < 300) != accepted:
                continue
            out.append(rec)
            if limit and len(out) >= limit:
                break
        return out, last

    def clear_messages(self) -> int:
        with self.lock:
            n = len(self.messages)
            self.messages.clear()
            self.by_provider_id.clear()
            return n

    def find(self, provider_message_id: str) -> dict | None:
        with self.lock:
            return self.by_provider_id.get(provider_message_id)

    # -- media ---
    def put_media(self, data: bytes, mime_type: str, *, owner: str | None = None, filename: str | None = None) -> dict:
        media_id = ids.graph_id()
        item = {"id": media_id, "data": data, "mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data), "owner": owner, "filename": filename, "created": time.time()}
        with self.lock:
            self.media[media_id] = item
            self.media_bytes += len(data)
            while self.media_bytes > self.media_max_bytes and len(self.media) > 1:
                _, old = self.media.popitem(last=False)
                self.media_bytes -= old["file_size"]
        return item

    def get_media(self, media_id: str) -> dict | None:
        with self.lock:
            return self.media.get(media_id)

    def delete_media(self, media_id: str) -> bool:
        with self.lock:
            item = self.media.pop(media_id, None)
            if item is not None:
                self.media_bytes -= item["file_size"]
            return item is not None

    # -- templates ---
    def add_template(self, tpl: dict) -> dict | None:
        """Stores a template; None when (waba, name, language) already exists."""
        with self.lock:
            for other in self.templates.values():
                if (other["_waba_id"], other["name"], other["language"]) == (tpl["_waba_id"], tpl["name"],
                                                                            tpl["language"]):
                    return None
            self.templates[tpl["id"]] = tpl
            return tpl

    def list_templates(self, waba_id: str | None = None) -> list[dict]:
        with self.lock:
            return [t for t in self.templates.values() if waba_id is None or t["_waba_id"] == waba_id]

    def get_template(self, template_id: str) -> dict | None:
        with self.lock:
            return self.templates.get(template_id)

    def update_template(self, template_id: str, change: Callable[[dict], Any]) -> Any:
        """``change(template)`` run under the lock (None if there is no such template), so a check and the
        update it allows cannot interleave with another request's."""
        with self.lock:
            tpl = self.templates.get(template_id)
            return None if tpl is None else change(tpl)

    def delete_templates(self, waba_id: str, name: str, template_id: str | None = None) -> list[dict]:
        """Removes every language of ``name`` in the WABA, or only ``template_id``; the removed templates."""
        with self.lock:
            gone = [t for t in self.templates.values() if t["_waba_id"] == waba_id and t["name"] == name
                    and (template_id is None or t["id"] == template_id)]
            for tpl in gone:
                del self.templates[tpl["id"]]
            return gone

    def find_template(self, name: str, language: str, waba_id: str | None = None) -> dict | None:
        with self.lock:
            for tpl in self.templates.values():
                if tpl["name"] == name and tpl["language"] == language and (waba_id is None or
                                                                             tpl["_waba_id"] == waba_id):
                    return tpl
        return None

    # -- Twilio message resources ---
    def put_twilio(self, resource: dict) -> None:
        with self.lock:
            self.twilio[resource["sid"]] = resource
            while len(self.twilio) > self.resources_max:
                self.twilio.popitem(last=False)

    def get_twilio(self, sid: str) -> dict | None:
        with self.lock:
            item = self.twilio.get(sid)
            return dict(item) if item is not None else None

    def list_twilio(self, account_sid: str, *, to: str | None = None, from_: str | None = None,
                    limit: int = 50) -> list[dict]:
        """The account's message resources, newest first, filtered as Twilio's list filters do."""
        with self.lock:
            items = [dict(r) for r in reversed(self.twilio.values()) if r["account_sid"] == account_sid
                     and (to is None or r["to"] == to) and (from_ is None or r["from"] == from_)]
        return items[:limit]

    def update_twilio(self, sid: str, **changes: Any) -> None:
        with self.lock:
            item = self.twilio.get(sid)
            if item is not None:
                item.update(changes)

    def stats(self) -> dict:
        with self.lock:
            return {"counts": dict(self.counts), "messages_stored": len(self.messages), "last_seq": self.last_seq,
                    "media": len(self.media), "media_bytes": self.media_bytes, "templates": len(self.templates),
                    "twilio_resources": len(self.twilio),
                    "uptime_s": round(time.monotonic() - self.started, 3)}
