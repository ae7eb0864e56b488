"""Plumbing every provider folder shares: case-insensitive headers, Retry-After, reasons without personal data.

Provider knowledge (payloads, codes, signatures) stays in each folder; these
are the generic pieces they would otherwise each write again.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import _basic_auth_str
from requests.compat import json as _requests_json
from urllib3 import exceptions as urllib3_exceptions
from urllib3.exceptions import (ClosedPoolError, ConnectTimeoutError, LocationValueError, MaxRetryError,
                                NewConnectionError, ProtocolError, ReadTimeoutError, ResponseError)
from urllib3.util import Timeout

_json_dumps = _requests_json.dumps   # what requests encodes a json= body with (simplejson when installed)


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


# Keyword arguments the fast path handles; anything else (files, params, streams, redirects, per-call proxies,
# verify or cert) takes the full Session path.
_FAST = frozenset({"data", "json", "headers", "auth", "timeout", "allow_redirects"})


@dataclass(frozen=True, slots=True)
class _Route:
    """What a URL needs, worked out once: its host's environment and, when no proxy applies, where the fast
    path sends it (computed by requests itself, so both paths share one pool per host and verify TLS alike)."""
    proxies: dict
    verify: bool | str
    adapter: HTTPAdapter | None = None
    url: str = ""              # as requests prepares it
    target: str = ""           # the request line's target
    host: dict | None = None   # host params and pool kwargs: the pool requests would pick
    pool_kwargs: dict | None = None


class ProviderResponse:
    """The parts of requests.Response a provider adapter reads, for an answer read in full.

    ``headers`` is urllib3's case-insensitive HTTPHeaderDict (a repeated header reads as one comma-joined
    value, as in requests). ``text`` without a charset decodes as UTF-8 (requests would guess with
    charset_normalizer); ``json()`` follows requests: UTF-8/16/32 detected when the answer names no charset,
    requests.JSONDecodeError (a ValueError) when it is not JSON."""
    __slots__ = ("status_code", "headers", "content", "reason", "url")

    def __init__(self, status_code: int, headers, content: bytes, reason: str | None, url: str):
        self.status_code, self.headers, self.content, self.reason, self.url = (
            status_code, headers, content, reason, url)

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def encoding(self) -> str | None:
        return requests.utils.get_encoding_from_headers(self.headers)

    @property
    def text(self) -> str:
        return self._decoded(self.encoding)

    def json(self, **kwargs) -> Any:
        encoding = self.encoding
        try:
            if encoding is None:
                return json.loads(self.content, **kwargs)
            return json.loads(self._decoded(encoding), **kwargs)
        except json.JSONDecodeError as exc:
            raise requests.JSONDecodeError(exc.msg, exc.doc, exc.pos) from None

    def _decoded(self, encoding: str | None) -> str:
        try:
            return str(self.content, encoding or "utf-8", errors="replace")
        except LookupError:   # a charset Python does not know
            return str(self.content, "utf-8", errors="replace")

    def close(self) -> None:
        pass   # the answer was read in full and its connection is back in the pool

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self) -> str:
        return f"<ProviderResponse [{self.status_code}]>"


def _requests_error(exc: Exception) -> Exception:
    """The exception HTTPAdapter.send raises for this urllib3 one: the adapters classify requests' exceptions
    (a connect failure or connect timeout is retryable, a read timeout may have been sent)."""
    if isinstance(exc, (ProtocolError, OSError, ClosedPoolError)):
        return requests.ConnectionError(exc)
    if isinstance(exc, MaxRetryError):
        reason = exc.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return requests.ConnectTimeout(exc)
        if isinstance(reason, ResponseError):
            return requests.exceptions.RetryError(exc)
        if isinstance(reason, urllib3_exceptions.ProxyError):
            return requests.exceptions.ProxyError(exc)
        if isinstance(reason, urllib3_exceptions.SSLError):
            return requests.exceptions.SSLError(exc)
        return requests.ConnectionError(exc)
    if isinstance(exc, urllib3_exceptions.ProxyError):
        return requests.exceptions.ProxyError(exc)
    if isinstance(exc, urllib3_exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, ReadTimeoutError):
        return requests.ReadTimeout(exc)
    if isinstance(exc, urllib3_exceptions.InvalidHeader):
        return requests.exceptions.InvalidHeader(exc)
    return exc


def _put(headers: dict, name: str, value: str | None) -> None:
    """Set a header replacing any spelling of its name (None removes it), as requests' merge does."""
    wanted = name.lower()
    for have in [have for have in headers if have.lower() == wanted]:
        del headers[have]
    if value is not None:
        headers[name] = value


def _timeout(timeout) -> Timeout:
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
        except ValueError:
            raise ValueError(f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, "
                             "or a single float to set both timeouts to the same value.") from None
        return Timeout(connect=connect, read=read)
    return timeout if isinstance(timeout, Timeout) else Timeout(connect=timeout, read=timeout)


class ProviderSession(requests.Session):
    """A requests.Session that reads the environment (proxies, no_proxy, CA bundle) once per host, and sends
    plain provider API calls through its own connection pool without the Session machinery.

    A plain Session looks for ~/.netrc, the proxy variables and the CA bundle on every request: a handful of
    system calls that cost more than the rest of a keep-alive call on a small machine at a thousand sends a
    second. Provider calls always carry their own credentials, so netrc is never wanted.

    The fast path (no redirects, no proxy, a body of JSON, bytes or form fields) sends the same request on
    the same keep-alive pool and raises the same exceptions; what it skips (cookie jar, hooks, settings merge,
    redirect machinery, PreparedRequest and Response objects) cost a send worker as much CPU as the HTTP
    exchange itself. Its answer is a ProviderResponse, read in full."""

    def __init__(self, pool_connections: int, pool_maxsize: int):
        super().__init__()
        self.trust_env = False
        self._env: dict[tuple[str, str], tuple[dict, object]] = {}
        self._routes: dict[str, _Route] = {}
        # max_retries stays 0: a POST is never resent behind the send worker's back.
        adapter = _Adapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method, url, *args, **kwargs):
        route = self._routes.get(url) if isinstance(url, str) else None
        if route is None:
            route = self._route(url)
        if route.host is not None and not args and self._fast_ok(kwargs):
            return self._fast(method, route, **kwargs)
        if not kwargs.get("proxies"):
            kwargs["proxies"] = route.proxies
        if kwargs.get("verify") is None:
            kwargs["verify"] = route.verify
        return super().request(method, url, *args, **kwargs)

    def _fast_ok(self, kwargs) -> bool:
        """A call the fast path sends exactly as the full path would."""
        auth, data = kwargs.get("auth"), kwargs.get("data")
        return (kwargs.get("allow_redirects") is False and kwargs.keys() <= _FAST
                and (auth is None or (isinstance(auth, tuple) and len(auth) == 2))
                and (data is None or isinstance(data, (bytes, str, dict, list, tuple)))
                and not self.proxies and self.cert is None and self.verify is True and self.auth is None
                and not self.params and not self.cookies)

    def _route(self, url) -> _Route:
        parts = urlsplit(url)
        env = self._env.get((parts.scheme, parts.netloc))
        if env is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            env = self._env[(parts.scheme, parts.netloc)] = (requests.utils.get_environ_proxies(url), bundle)
        route = _Route(*env)
        if not env[0]:
            try:
                prepared = requests.PreparedRequest()
                prepared.prepare_url(url, None)
                adapter = self.get_adapter(prepared.url)
                if isinstance(adapter, HTTPAdapter):
                    host, pool_kwargs = adapter.build_connection_pool_key_attributes(prepared, env[1], None)
                    route = _Route(*env, adapter, prepared.url, adapter.request_url(prepared, {}), host,
                                   pool_kwargs)
            except Exception:
                pass   # a URL requests refuses: the full path raises requests' own error for it
        if isinstance(url, str):
            if len(self._routes) >= 1024:
                self._routes.clear()
            self._routes[url] = route
        return route

    def _fast(self, method: str, route: _Route, *, data=None, json=None, headers=None, auth=None,
              timeout=None, allow_redirects=False) -> ProviderResponse:
        merged = dict(self.headers.items())
        for name, value in (headers or {}).items():
            if value is not None:
                requests.utils.check_header_validity((name, value))
            _put(merged, name, value)
        present = {name.lower() for name in merged}
        body, content_type = None, None
        if not data and json is not None:
            try:
                body = _json_dumps(json, allow_nan=False).encode("utf-8")
            except ValueError as exc:
                raise requests.exceptions.InvalidJSONError(exc) from None
            content_type = "application/json"
        elif data:
            body = requests.models.RequestEncodingMixin._encode_params(data)
            if not isinstance(data, (str, bytes)):
                content_type = "application/x-www-form-urlencoded"
            if isinstance(body, str):
                body = body.encode("utf-8")
        if body is not None:
            _put(merged, "Content-Length", str(len(body)))
        elif method.upper() not in ("GET", "HEAD") and "content-length" not in present:
            merged["Content-Length"] = "0"
        if content_type and "content-type" not in present:
            merged["Content-Type"] = content_type
        if auth is not None:
            _put(merged, "Authorization", _basic_auth_str(*auth))
        adapter = route.adapter
        try:
            pool = adapter.poolmanager.connection_from_host(**route.host, pool_kwargs=route.pool_kwargs)
        except LocationValueError as exc:
            raise requests.exceptions.InvalidURL(exc) from None
        adapter.cert_verify(pool, route.url, route.verify, None)
        # The answer is read inside urlopen, so an answer cut short raises ConnectionError (requests: a
        # ChunkedEncodingError) and a read timeout mid-answer ReadTimeout (requests: ConnectionError): the
        # adapters take all of them as "may have been sent", as they must.
        try:
            raw = pool.urlopen(method.upper(), route.target, body=body, headers=merged, redirect=False,
                               assert_same_host=False, preload_content=True, decode_content=True,
                               retries=adapter.max_retries, timeout=_timeout(timeout), chunked=False)
        except (urllib3_exceptions.HTTPError, OSError) as exc:
            raise _requests_error(exc)
        return ProviderResponse(raw.status, raw.headers, raw.data, raw.reason, route.url)


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
