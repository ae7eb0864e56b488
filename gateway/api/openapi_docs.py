"""The API reference page (``GET /docs``): plain HTML rendered on the server from the OpenAPI document.

Nothing is fetched by the browser (no script, no CDN): the page is the document made readable, grouped by
tag, each operation with its scope, parameters, bodies, responses and problem types, then the webhook
events with their fields, the problem types and the schemas.
"""
from __future__ import annotations

from html import escape

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
header{background:#1d232a;color:#fff;padding:1.2em 2em}header a{color:#9cd}
main{display:grid;grid-template-columns:16em 1fr;gap:2em;padding:1em 2em}
nav{position:sticky;top:1em;align-self:start;max-height:95vh;overflow:auto;font-size:.9em}
nav a{display:block;color:#245;text-decoration:none;padding:.1em 0}
h2{border-bottom:2px solid #dde;padding-bottom:.2em;margin-top:2em}
.op{background:#fff;border:1px solid #dde;border-radius:6px;padding:.6em 1em;margin:.8em 0}
.op h3{margin:.2em 0;font-size:1em;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;padding:0 .4em;
   margin-right:.5em;font-weight:600}
.GET{background:#2a7}.POST{background:#27c}.PUT{background:#c80}.PATCH{background:#a5c}.DELETE{background:#c33}
.scope{font-size:.85em;color:#555}.scope code{background:#eef;padding:0 .3em;border-radius:3px}
table{border-collapse:collapse;margin:.4em 0;font-size:.9em}td,th{border:1px solid #dde;padding:.2em .5em;
   text-align:left;vertical-align:top}th{background:#f0f2f5}
.desc{white-space:pre-wrap;color:#333}code{font-family:ui-monospace,monospace}.slug{color:#a33}
"""


def render(doc: dict) -> str:
    ops = _operations(doc)
    tags = sorted({op["tags"][0] for _, _, op in ops})
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(doc['info']['title'])} API"
             f"</title><style>{_CSS}</style></head><body><header><h1>{escape(doc['info']['title'])} API</h1>"
             f"<p>{_inline(doc['info'].get('description', ''))}</p><p>Machine-readable: "
             "<a href=/openapi.json>/openapi.json</a> (OpenAPI 3.1)</p></header><main><nav>"]
    parts += [f"<a href='#tag-{_anchor(t)}'>{escape(t)}</a>" for t in tags]
    parts.append("<a href='#webhooks'>Webhook events</a><a href='#problems'>Problem types</a>"
                 "<a href='#schemas'>Schemas</a></nav><div>")
    for tag in tags:
        parts.append(f"<h2 id='tag-{_anchor(tag)}'>{escape(tag)}</h2>")
        parts += [_operation(method, path, op) for method, path, op in ops if op["tags"][0] == tag]
    parts.append(_webhooks(doc))
    parts.append(_problem_types(doc))
    parts.append(_schemas(doc))
    parts.append("</div></main></body></html>")
    return "".join(parts)


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, item in doc.get("paths", {}).items()
            for method, op in item.items() if isinstance(op, dict) and "responses" in op]


def _anchor(text: str) -> str:
    """An id attribute: ``-`` and ``_`` kept, so template-not-found and template_not_found stay apart."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text.lower())


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    out, code = [], False
    for piece in escape(text).split("`"):
        out.append(f"<code>{piece}</code>" if code else piece)
        code = not code
    return "".join(out)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict | None) -> str:
    """A JSON Schema as a short HTML label: a link for a reference, ``array of X``, ``string (uuid)``…"""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"<a href='#schema-{_anchor(name)}'>{escape(name)}</a>"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kinds = schema.get("type", "object" if "properties" in schema else "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    labels = []
    for kind in kinds:
        if kind == "array":
            labels.append("array of " + _type(schema.get("items")))
        elif kind != "null" and schema.get("format"):
            labels.append(f"{kind} ({escape(schema['format'])})")
        else:
            labels.append(escape(kind))
    label = " | ".join(labels)
    if "enum" in schema:
        label += ": " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    if "const" in schema:
        label += f" <code>{escape(str(schema['const']))}</code>"
    return label


def _bodies(content: dict | None) -> str:
    if not content:
        return ""
    return "; ".join(f"<code>{escape(media)}</code> {_type(spec.get('schema'))}" for media, spec in content.items())


def _operation(method: str, path: str, op: dict) -> str:
    scope = op.get("x-scope")
    who = ("no API key" if scope is None else "any API key" if scope == "any"
           else f"scope <code>{escape(scope)}</code>")
    html = [f"<div class=op id='op-{escape(op.get('operationId', ''))}'><h3><span class='m {method}'>{method}</span>"
            f"{escape(path)}</h3><div>{_inline(op.get('summary', ''))} <span class=scope>— {who}</span></div>"]
    if op.get("description"):
        html.append(f"<p class=desc>{_inline(op['description'])}</p>")
    if op.get("parameters"):
        html.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>")
        for p in op["parameters"]:
            name = escape(p["name"]) + (" *" if p.get("required") else "")
            html.append(f"<tr><td><code>{name}</code></td><td>{escape(p['in'])}</td><td>{_type(p.get('schema'))}</td>"
                        f"<td>{_inline(p.get('description', ''))}</td></tr>")
        html.append("</table>")
    if "requestBody" in op:
        html.append(f"<div>Request body: {_bodies(op['requestBody'].get('content'))}</div>")
    html.append("<table><tr><th>status</th><th>answer</th></tr>")
    for status, response in op["responses"].items():
        body = _bodies(response.get("content")) or "no body"
        html.append(f"<tr><td>{escape(status)}</td><td>{_inline(response.get('description', ''))}"
                    f"<br>{body}</td></tr>")
    html.append("</table>")
    if op.get("x-problem-types"):
        html.append("<div>Problem types: " + ", ".join(
            f"<a class=slug href='#problem-{_anchor(slug)}'>{escape(slug)}</a>" for slug in op["x-problem-types"])
            + "</div>")
    html.append("</div>")
    return "".join(html)


def _fields(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        schema = components.get(_ref_name(schema["$ref"]), {})
    props = schema.get("properties") or {}
    if not props:
        return "<p>(free-form object)</p>"
    required = set(schema.get("required", ()))
    rows = ["<table><tr><th>field</th><th>type</th><th>description</th></tr>"]
    for name, prop in props.items():
        mark = " *" if name in required else ""
        rows.append(f"<tr><td><code>{escape(name)}{mark}</code></td><td>{_type(prop)}</td>"
                    f"<td>{_inline(prop.get('description', ''))}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _webhooks(doc: dict) -> str:
    components = doc.get("components", {}).get("schemas", {})
    html = ["<h2 id=webhooks>Webhook events</h2><p>Each event is POSTed as JSON <code>{id, type, timestamp, "
            "account_id, data}</code> (message events may add <code>content</code>) with the Standard Webhooks "
            "headers <code>webhook-id</code>, <code>webhook-timestamp</code> and <code>webhook-signature</code>. "
            "Fields marked * are always present.</p>"]
    for name, item in doc.get("webhooks", {}).items():
        op = item["post"]
        envelope = op["requestBody"]["content"]["application/json"]["schema"]
        html.append(f"<div class=op id='event-{_anchor(name)}'><h3>{escape(name)}</h3><div>"
                    f"{_inline(op.get('summary', ''))} <span class=scope>— scope <code>"
                    f"{escape(op.get('x-scope', ''))}</code></span></div>"
                    f"{_fields(envelope['properties']['data'], components)}</div>")
    return "".join(html)


def _problem_types(doc: dict) -> str:
    html = ["<h2 id=problems>Problem types</h2><p>Errors are RFC 9457 documents "
            "(<code>application/problem+json</code>); <code>type</code> ends in one of these slugs.</p>"
            "<table><tr><th>slug</th><th>status</th><th>title</th></tr>"]
    for p in doc.get("x-problem-types", []):
        html.append(f"<tr id='problem-{_anchor(p['slug'])}'><td><code class=slug>{escape(p['slug'])}</code></td>"
                    f"<td>{', '.join(str(s) for s in p['status']) or 'varies'}</td>"
                    f"<td>{escape(', '.join(p['title']))}</td></tr>")
    html.append("</table>")
    return "".join(html)


def _schemas(doc: dict) -> str:
    components = doc.get("components", {}).get("schemas", {})
    html = ["<h2 id=schemas>Schemas</h2>"]
    for name, schema in sorted(components.items()):
        description = f"<p>{_inline(schema['description'])}</p>" if schema.get("description") else ""
        html.append(f"<div class=op id='schema-{_anchor(name)}'><h3>{escape(name)}</h3>{description}"
                    f"{_fields(schema, components)}</div>")
    return "".join(html)
