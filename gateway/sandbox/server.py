"""The sandbox provider's HTTP server: ``make_app(config)`` (a Flask app) and ``serve(host, port, **config)``.

Provider paths (set a channel's ``api_base_url`` to the sandbox's base URL):

  POST /{version}/{phone_number_id}/messages       Cloud API send / mark-as-read  (body has messaging_product)
  POST /{version}/{page_id|me}/messages            Messenger / Instagram Send API (body has recipient)
  POST /{version}/{phone_number_id}/media          Cloud API media upload (multipart)
  GET  /{version}/{media_id}                       media lookup → {url, mime_type, sha256, file_size, id}
  DELETE /{version}/{media_id}                     media delete
  GET  /media-files/{media_id}                     the bytes (Bearer token required, like lookaside)
  GET|POST /{version}/{waba_id}/message_templates  templates, kept in memory
  DELETE /{version}/{waba_id}/message_templates?name=NAME[&hsm_id=ID]   template delete (all languages, or one)
  POST /{version}/{template_id}                    template edit (components, category) → PENDING, then reviewed
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json           Twilio send
  GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json     Twilio fetch

Control API under ``/_sandbox/`` (JSON): config, messages, callbacks, stats, reset, media,
templates/{id}/status, say, wait, health. The two send paths are answered by a bare WSGI
layer in front of Flask (no per-request logging, no Flask request context): they are what
a load test hammers.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response as FlaskResponse, request
from werkzeug.routing import BaseConverter
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from gateway.sandbox import cloud, messenger, twilio
from gateway.sandbox.core import STARTUP_KEYS, Req, Response, Sandbox, read_body
from gateway.sandbox.faults import ConfigError, GLOBAL, TEMPLATE_STATUSES
from gateway.sandbox.say import inbound
from gateway.sandbox.store import now_ms

log = logging.getLogger("gateway.sandbox")
VERSION = re.compile(r"^v\d+(\.\d+)?$")
GRAPH_JSON = "application/json; charset=UTF-8"
_REASONS = {200: "OK", 201: "CREATED", 400: "BAD REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT FOUND",
            429: "TOO MANY REQUESTS", 500: "INTERNAL SERVER ERROR", 502: "BAD GATEWAY", 503: "SERVICE UNAVAILABLE",
            504: "GATEWAY TIMEOUT"}


def _encode(answer: Response, content_type: str = GRAPH_JSON) -> tuple[int, bytes, list[tuple[str, str]]]:
    status, body, extra = answer
    headers = dict(extra or {})
    if isinstance(body, (bytes, bytearray)):
        payload = bytes(body)
        headers.setdefault("Content-Type", "application/octet-stream")
    else:
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers.setdefault("Content-Type", content_type)
    headers["Content-Length"] = str(len(payload))
    return status, payload, list(headers.items())


def _graph_doc(req: Req) -> Any:
    """The body as Graph reads it: JSON, or a form whose values may themselves be JSON (curl -F style)."""
    ctype = (req.header("Content-Type") or "").lower()
    if ctype.startswith("application/x-www-form-urlencoded"):
        doc = {}
        for key, value in parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True):
            try:
                doc[key] = json.loads(value) if value[:1] in "{[" else value
            except ValueError:
                doc[key] = value
        return doc
    try:
        return json.loads(req.body) if req.body else None
    except ValueError:
        return None


def graph_messages(sb: Sandbox, req: Req, version: str, node: str) -> Response:
    """Cloud API and Messenger share the path: the body tells them apart."""
    doc = _graph_doc(req)
    if node == "me":
        return messenger.send(sb, req, version, node, doc)
    if isinstance(doc, dict):
        if "messaging_product" in doc:
            return cloud.send(sb, req, version, node, doc)
        if "recipient" in doc or "sender_action" in doc:
            return messenger.send(sb, req, version, node, doc)
    if req.arg("access_token") and not req.bearer():
        return messenger.send(sb, req, version, node, doc)
    return cloud.send(sb, req, version, node, doc)


class FastPath:
    """WSGI layer answering the send endpoints itself; everything else goes to the Flask app."""

    def __init__(self, app, sb: Sandbox):
        self.app = app
        self.sb = sb

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        parts = path.split("/")
        answer = None
        content_type = GRAPH_JSON
        if method == "POST":
            if len(parts) == 4 and parts[3] == "messages" and VERSION.match(parts[1]) and parts[2]:
                answer = graph_messages(self.sb, Req(environ, read_body(environ)), parts[1], parts[2])
            elif (len(parts) == 5 and parts[1] == "2010-04-01" and parts[2] == "Accounts"
                  and parts[4] == "Messages.json"):
                answer = twilio.send(self.sb, Req(environ, read_body(environ)), parts[3])
                content_type = "application/json; charset=utf-8"
        elif (method == "GET" and len(parts) == 5 and parts[1] == "2010-04-01" and parts[2] == "Accounts"
              and parts[4] == "Messages.json"):
            answer = twilio.list_messages(self.sb, Req(environ, b""), parts[3])
            content_type = "application/json; charset=utf-8"
        elif (method == "GET" and len(parts) == 6 and parts[1] == "2010-04-01" and parts[2] == "Accounts"
              and parts[4] == "Messages" and parts[5].endswith(".json")):
            answer = twilio.fetch(self.sb, Req(environ, b""), parts[3], parts[5][:-5])
            content_type = "application/json; charset=utf-8"
        if answer is None:
            return self.app(environ, start_response)
        status, payload, headers = _encode(answer, content_type)
        start_response(f"{status} {_REASONS.get(status, 'ERROR')}", headers)
        return [payload]


def _flask(answer: Response, content_type: str = GRAPH_JSON) -> FlaskResponse:
    status, payload, headers = _encode(answer, content_type)
    return FlaskResponse(payload, status=status, headers=headers)


def _json_error(status: int, message: str, **extra) -> FlaskResponse:
    return _flask((status, {"error": message, **extra}, None), "application/json")


class _GraphVersion(BaseConverter):
    regex = r"v\d+(?:\.\d+)?"          # VERSION without anchors or a capturing group


def make_app(config: dict | None = None) -> Flask:
    """The sandbox as a Flask app; ``app.sandbox`` is its state (tests, the CLI). ``config`` takes any
    setting of ``faults.DEFAULTS`` (global layer) plus startup options (``core.STARTUP_KEYS``: seed,
    history_max, callback_workers, callback_retries, callback_timeout_s, callback_batch_max, media_max_bytes,
    max_pending_callbacks)."""
    sb = Sandbox(config)
    app = Flask("gateway.sandbox")
    app.url_map.converters["graph_version"] = _GraphVersion
    app.sandbox = sb
    app.json.sort_keys = False

    # -- Graph: media, templates ---------------------------------------------------------------------------
    @app.post("/<version>/<phone_number_id>/media")
    def upload(version, phone_number_id):
        if not VERSION.match(version):
            return not_found(None)
        req = Req(request.environ, b"")
        return _flask(cloud.upload_media(sb, phone_number_id, cloud.token_error(sb, req, phone_number_id),
                                         request.form, request.files))

    @app.get("/<version>/<object_id>")
    def graph_object(version, object_id):
        if not VERSION.match(version):
            return not_found(None)
        return _flask(cloud.media_info(sb, Req(request.environ, b""), object_id))

    # Of the objects the sandbox holds, only templates can be updated. The version converter keeps this rule
    # off /_sandbox/<name>, whose other methods then still answer 405.
    @app.post("/<graph_version:version>/<object_id>")
    def graph_update(version, object_id):
        req = Req(request.environ, request.get_data(cache=True))
        return _flask(cloud.edit_template(sb, req, object_id, _graph_doc(req)))

    @app.delete("/<version>/<object_id>")
    def graph_delete(version, object_id):
        if not VERSION.match(version):
            return not_found(None)
        return _flask(cloud.media_delete(sb, Req(request.environ, b""), object_id))

    @app.get("/media-files/<media_id>")
    def media_file(media_id):
        return _flask(cloud.media_bytes(sb, Req(request.environ, b""), media_id))

    @app.route("/<version>/<waba_id>/message_templates", methods=["GET", "POST", "DELETE"])
    def templates(version, waba_id):
        if not VERSION.match(version):
            return not_found(None)
        req = Req(request.environ, request.get_data(cache=True))
        if request.method == "GET":
            return _flask(cloud.list_templates(sb, req, waba_id))
        if request.method == "DELETE":
            return _flask(cloud.delete_templates(sb, req, waba_id))
        return _flask(cloud.create_template(sb, req, waba_id, _graph_doc(req)))

    @app.errorhandler(404)
    def not_found(_exc):
        path = request.path
        if path.startswith("/2010-04-01/"):
            return _flask((404, {"code": 20404, "message": f"The requested resource {path} was not found",
                                 "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}, None),
                          "application/json; charset=utf-8")
        if path.startswith("/_sandbox/"):
            return _json_error(404, f"no control endpoint {request.method} {path}")
        return _flask((400, {"error": {"message": f"Unknown path components: {path}", "type": "OAuthException",
                                       "code": 2500, "fbtrace_id": "SANDBOX"}}, None))

    @app.errorhandler(405)
    def not_allowed(_exc):
        return _json_error(405, f"{request.method} is not allowed on {request.path}")

    # -- control API -------------------------------------------------------------------------------------------
    def body_object() -> dict:
        if not request.get_data(cache=True):
            return {}
        doc = request.get_json(silent=True)
        if not isinstance(doc, dict):
            raise ConfigError("the body must be a JSON object")
        return doc

    @app.get("/_sandbox/health")
    def health():
        return {"ok": True}

    @app.get("/_sandbox/config")
    def get_config():
        return {**sb.faults.describe(), "startup": sb.startup}

    @app.post("/_sandbox/config")
    def set_config():
        try:
            doc = body_object()
            scope = doc.pop("scope", None) or GLOBAL
            replace = bool(doc.pop("replace", False))
            if not isinstance(scope, str):
                raise ConfigError("scope must be a string (an id, 'to:<recipient>', or '*')")
            if "seed" in doc:
                seed = doc.pop("seed")
                if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                    raise ConfigError("seed must be an integer (or null for a random one)")
                sb.faults.reseed(seed)
            layer = sb.faults.update(scope, doc, replace=replace)
        except ConfigError as exc:
            return _json_error(400, str(exc))
        effective = sb.faults.effective(() if scope == GLOBAL else (scope,))
        effective.pop("_budget", None)
        return {"scope": scope, "settings": layer, "effective": effective}

    @app.delete("/_sandbox/config")
    def delete_config():
        scope = request.args.get("scope")
        if scope and scope != GLOBAL:
            sb.faults.drop(scope)
        else:
            sb.faults.drop(None)
            if sb.initial:
                sb.faults.update(None, sb.initial)
        return sb.faults.describe()

    @app.get("/_sandbox/messages")
    def get_messages():
        args = request.args
        try:
            since = float(args["since"]) if args.get("since") else None
            after_seq = int(args["after_seq"]) if args.get("after_seq") else None
            limit = int(args["limit"]) if args.get("limit") else None
        except ValueError:
            return _json_error(400, "since is monotonic milliseconds, after_seq and limit are integers")
        accepted = args.get("accepted")
        items, last = sb.store.list_messages(
            since=since, after_seq=after_seq, provider=args.get("provider"), channel_id=args.get("channel_id"),
            recipient=args.get("recipient"), limit=limit,
            accepted=None if accepted is None else accepted.lower() in ("1", "true", "yes"))
        return {"messages": items, "count": len(items), "last_seq": last, "now": now_ms()}

    @app.delete("/_sandbox/messages")
    def clear_messages():
        return {"cleared": sb.store.clear_messages()}

    @app.get("/_sandbox/messages/<path:provider_message_id>")
    def get_message(provider_message_id):
        rec = sb.store.find(provider_message_id)
        if rec is None:
            return _json_error(404, f"no message {provider_message_id!r} was received (or it aged out)")
        return dict(rec)

    @app.get("/_sandbox/callbacks")
    def get_callbacks():
        try:
            since = int(request.args.get("since") or 0)
            limit = int(request.args.get("limit") or 0) or None
        except ValueError:
            return _json_error(400, "since and limit are integers")
        items = sb.dispatcher.history(since, limit)
        return {"callbacks": items, "count": len(items), **sb.dispatcher.stats()}

    @app.post("/_sandbox/wait")
    def wait():
        try:
            timeout = float(body_object().get("timeout_s", 10))
        except (ConfigError, TypeError, ValueError):
            return _json_error(400, "timeout_s is a number of seconds")
        idle = sb.dispatcher.wait_idle(min(timeout, 120))
        return {"idle": idle, "pending": sb.dispatcher.pending()}

    @app.get("/_sandbox/stats")
    def stats():
        out = sb.store.stats()
        out["callbacks"] = sb.dispatcher.stats()
        return out

    @app.post("/_sandbox/reset")
    def reset():
        sb.reset()
        return {"reset": True}

    @app.post("/_sandbox/media")
    def preload_media():
        upload = request.files.get("file")
        if upload is not None:
            data, mime, name = upload.read(), request.form.get("type") or upload.mimetype, upload.filename
        else:
            data, mime, name = request.get_data(), request.mimetype or "application/octet-stream", None
        if not data:
            return _json_error(400, "send the media as the body (with its Content-Type) or as multipart 'file'")
        item = sb.store.put_media(data, mime, owner=request.args.get("phone_number_id"), filename=name)
        return {"id": item["id"], "mime_type": item["mime_type"], "sha256": item["sha256"],
                "file_size": item["file_size"]}

    @app.post("/_sandbox/templates/<template_id>/status")
    def template_status(template_id):
        try:
            doc = body_object()
        except ConfigError as exc:
            return _json_error(400, str(exc))
        status = doc.get("status")
        if status not in TEMPLATE_STATUSES:
            return _json_error(400, f"status must be one of {list(TEMPLATE_STATUSES)}")
        tpl = cloud.set_template_status(sb, template_id, status, doc.get("reason"))
        if tpl is None:
            return _json_error(404, f"no template {template_id!r}")
        return tpl

    @app.post("/_sandbox/say")
    def say_endpoint():
        try:
            doc = body_object()
        except ConfigError as exc:
            return _json_error(400, str(exc))
        kind = doc.get("channel_kind", "whatsapp")
        sender = doc.get("from") or doc.get("from_number")
        text = doc.get("text")
        if not isinstance(sender, str) or not isinstance(text, str):
            return _json_error(400, "say needs 'from' and 'text'")
        scope = doc.get("phone_number_id") or doc.get("page_id") or doc.get("to_number") or doc.get("account_sid")
        cfg = sb.faults.effective([s for s in (doc.get("account_sid"), scope) if isinstance(s, str) and s])
        gateway_url = doc.get("gateway_url") or cfg["gateway_url"]
        if not gateway_url:
            return _json_error(400, "no gateway_url: configure it (POST /_sandbox/config) or pass it")
        try:
            result = inbound(gateway_url, channel_kind=kind, phone_number_id=doc.get("phone_number_id"),
                             from_number=sender, text=text, name=doc.get("name"),
                             app_secret=doc.get("app_secret") or cfg["app_secret"],
                             auth_token=doc.get("auth_token") or cfg["twilio_auth_token"],
                             to_number=doc.get("to_number"), account_sid=doc.get("account_sid"),
                             page_id=doc.get("page_id"), waba_id=cfg["waba_id"],
                             display_phone_number=cfg["display_phone_number"])
        except ValueError as exc:
            return _json_error(400, str(exc))
        except Exception as exc:   # the gateway is down, refused, timed out
            return _json_error(502, f"could not reach the gateway at {gateway_url}: {exc}")
        return {"status": result["status"], "message_id": result["message_id"], "url": result["url"]}

    app.wsgi_app = FastPath(app.wsgi_app, sb)
    return app


# -- running it ------------------------------------------------------------------------------------------------
class KeepAliveHandler(WSGIRequestHandler):
    """Werkzeug's request handler with HTTP/1.1 keep-alive and no access log.

    Werkzeug's own handler answers every request with ``Connection: close`` because
    http.server cannot tell where a request body it did not read ends. Here the body is
    bounded by Content-Length (or chunked framing) and whatever the app left unread is
    drained, so the connection can serve the next request: a keep-alive client then
    costs no connect, accept and thread start per request. Responses are buffered and
    written in one send (headers and body together, TCP_NODELAY): no Nagle stalls.
    """
    timeout = 120            # an idle keep-alive connection is dropped after this many seconds
    max_drain = 64 * 1024 * 1024

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        open_connections = getattr(self.server, "open_connections", None)
        if open_connections is not None:
            open_connections.add(self.connection)

    def finish(self) -> None:
        open_connections = getattr(self.server, "open_connections", None)
        if open_connections is not None:
            open_connections.discard(self.connection)
        super().finish()

    def log_request(self, *args, **kwargs) -> None:
        pass

    def log_error(self, format: str, *args) -> None:
        if not format.startswith("Request timed out"):     # idle keep-alive connections time out by design
            super().log_error(format, *args)

    def run_wsgi(self) -> None:
        # (Expect: 100-continue was answered by http.server's parse_request.)
        environ = self.environ = self.make_environ()
        if environ.get("wsgi.input_terminated"):
            stream = environ["wsgi.input"]                 # chunked: ends at the last chunk
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                length = 0
            stream = LimitedStream(self.rfile, length)
            environ["wsgi.input"] = stream
        written: list[bytes] = []
        started: dict[str, Any] = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = status, headers
            return written.append

        try:
            result = self.server.app(environ, start_response)
            try:
                for chunk in result:
                    written.append(chunk)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = started["status"], started["headers"]
        except (ConnectionError, socket.timeout):
            self.close_connection = True
            return
        except Exception:
            log.exception("sandbox: error answering %s %s", self.command, self.path)
            status, headers = "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]
            written = [b"Internal Server Error"]
            self.close_connection = True
        self._drain(stream)
        body = b"".join(written)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        has_length = False
        for name, value in headers:
            if name.lower() == "content-length":
                has_length = True
            if name.lower() != "connection":
                self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        try:
            self.wfile.write(head + body if self.command != "HEAD" else head)
        except (ConnectionError, socket.timeout):
            self.close_connection = True

    def _drain(self, stream) -> None:
        """Read what the app left of the body, so the next request starts where we read next."""
        drained = 0
        try:
            while True:
                chunk = stream.read(65536)
                if not chunk:
                    return
                drained += len(chunk)
                if drained > self.max_drain:
                    self.close_connection = True
                    return
        except Exception:
            self.close_connection = True


QuietHandler = KeepAliveHandler


@dataclass
class Running:
    app: Flask
    server: Any
    thread: threading.Thread | None
    url: str

    @property
    def sandbox(self) -> Sandbox:
        return self.app.sandbox

    def stop(self) -> None:
        self.app.sandbox.close()
        self.server.shutdown()
        self.server.server_close()
        _hang_up(self.server)
        if self.thread is not None:
            self.thread.join(5)


def _hang_up(server) -> None:
    """Close the keep-alive connections still open (their threads would otherwise wait for the client)."""
    for conn in list(getattr(server, "open_connections", ())):
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _bind(host: str, port: int, config: dict) -> Running:
    app = make_app(config)
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    server.daemon_threads = True
    server.open_connections = set()
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return Running(app, server, None, f"http://{shown}:{server.server_port}")


def start(host: str = "127.0.0.1", port: int = 0, **config) -> Running:
    """Run the sandbox in a background thread (port 0: any free port); ``.url``, ``.sandbox``, ``.stop()``."""
    running = _bind(host, port, config)
    running.thread = threading.Thread(target=running.server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name="sandbox-http", daemon=True)
    running.thread.start()
    return running


def serve(host: str = "127.0.0.1", port: int = 8089, *, ready=None, **config) -> None:
    """Run the sandbox in the foreground until interrupted. ``ready(url)`` is called once it listens."""
    running = _bind(host, port, config)
    if ready is not None:
        ready(running.url)
    else:
        log.warning("sandbox provider listening on %s", running.url)
    try:
        running.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.app.sandbox.close()
        running.server.server_close()
        _hang_up(running.server)


__all__ = ["make_app", "serve", "start", "Running", "STARTUP_KEYS"]
