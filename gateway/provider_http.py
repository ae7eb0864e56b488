"""Plumbing every provider folder shares: case-insensitive headers, Retry-After, reasons without personal data.

Provider knowledge (payloads, codes, signatures) stays in each folder; these
are the generic pieces they would otherwise each write again.
"""
from __future__ import annotations

import math
import os
import re
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Case-insensitive lookup that works on a plain dict as well as on Werkzeug headers."""
    if not headers:
        return None
    wanted = name.lower()
    try:
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                return value if isinstance(value, str) else None
    except Exception:
        return None
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date, never negative); None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def send_timeouts(settings: Mapping[str, Any] | None, connect: float, read: float) -> tuple[float, float]:
    """(connect, read) seconds for a send: a channel's ``send_timeout_s`` overrides the read timeout, or
    both as [connect, read]; anything unreadable keeps the provider's defaults."""
    override = (settings or {}).get("send_timeout_s")
    if isinstance(override, (list, tuple)) and len(override) == 2:
        return _positive(override[0]) or connect, _positive(override[1]) or read
    return connect, _positive(override) or read


_DIGITS = re.compile(r"\+?\d(?:[\s().-]?\d){7,}")


def scrub(text: str, *secrets: str | None, limit: int = 300) -> str:
    """``text`` without the given values (recipient, message text) nor anything phone-like, at most ``limit``."""
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    text = _DIGITS.sub("[number]", text)
    text = " ".join(text.split())
    return text[:limit - 1] + "…" if len(text) > limit else text


# -- keep-alive sessions --------------------------------------------------------------------------------------

class _Adapter(HTTPAdapter):
    """An HTTPAdapter that asks the file system once, not per request, whether a CA bundle path is a folder."""

    def __init__(self, **kwargs):
        self._is_dir: dict[str, bool] = {}
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        if not isinstance(verify, str):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        is_dir = self._is_dir.get(verify)
        if is_dir is None:
            is_dir = self._is_dir[verify] = os.path.isdir(verify)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, False, cert)
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ca_cert_dir" if is_dir else "ca_certs"] = verify
        return host_params, pool_kwargs


# Keyword arguments a direct call handles; anything else (files, params, streams, redirects) takes the
# full Session path.
_DIRECT = frozenset({"data", "json", "headers", "auth", "timeout", "allow_redirects"})


class ProviderSession(requests.Session):
    """A requests.Session that reads the environment (proxies, no_proxy, CA bundle) once per host.

    A plain Session looks for ~/.netrc, the proxy variables and the CA bundle on every request: a handful of
    system calls that cost more than the rest of a keep-alive call on a small machine at a thousand sends a
    second. Provider calls always carry their own credentials, so netrc is never wanted."""

    def __init__(self, pool_connections: int, pool_maxsize: int):
        super().__init__()
        self.trust_env = False
        self._env: dict[tuple[str, str], tuple[dict, object]] = {}
        # max_retries stays 0: a POST is never resent behind the send worker's back.
        adapter = _Adapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        env = self._env.get((parts.scheme, parts.netloc))
        if env is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            env = self._env[(parts.scheme, parts.netloc)] = (requests.utils.get_environ_proxies(url), bundle)
        if not args and kwargs.get("allow_redirects") is False and kwargs.keys() <= _DIRECT:
            return self._direct(method, url, env, **kwargs)
        if not kwargs.get("proxies"):
            kwargs["proxies"] = env[0]
        if kwargs.get("verify") is None:
            kwargs["verify"] = env[1]
        return super().request(method, url, *args, **kwargs)

    def _direct(self, method, url, env, *, data=None, json=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        """A provider API call straight to the mounted adapter: the same request on the same keep-alive pool
        with the same exceptions and Response, without the session's per-call cookie jar, hooks, settings
        merge and redirect machinery - which cost as much CPU as the HTTP exchange itself (a send worker
        makes a thousand of these a second)."""
        prepared = requests.PreparedRequest()
        prepared.method = method.upper()
        prepared.prepare_url(url, None)
        merged = requests.structures.CaseInsensitiveDict(self.headers)
        merged.update(headers or {})
        prepared.prepare_headers(merged)
        prepared.prepare_body(data, None, json)
        if auth is not None:
            prepared.prepare_auth(auth, url)
        prepared.hooks = {"response": []}
        response = self.get_adapter(url).send(prepared, timeout=timeout, verify=env[1], proxies=env[0])
        response.content   # read it all now, as Session.send does: the connection goes back to the pool
        return response


class ProcessSession:
    """One ProviderSession per process, made on first use and again in a forked child (whose inherited
    sockets and locks are not its own)."""

    def __init__(self, pool_connections: int = 8, pool_maxsize: int = 64):
        self.pool_connections, self.pool_maxsize = pool_connections, pool_maxsize
        self._session: ProviderSession | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> ProviderSession:
        pid = os.getpid()
        current = self._session
        if current is not None and self._pid == pid:
            return current
        with self._lock:
            if self._session is None or self._pid != pid:
                self._session, self._pid = ProviderSession(self.pool_connections, self.pool_maxsize), pid
            return self._session
