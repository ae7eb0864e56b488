"""Problem types, read from the source: every slug the code can answer with, and which views reach which.

Hand-kept lists of error types drift from the code; the code itself does not. So this module parses the
gateway's Python files once (``ast``, nothing is imported or run) and finds what becomes an RFC 9457
problem: ``Problem(status, title, …, slug=…)``, ``problem_response``/``problem_document`` (a missing slug
is the title in kebab case, as ``gateway.problems`` does), ``Refused(rule, status, …)`` /
``Refused(status, slug, …)`` (the send gate's and routing's refusals, turned into problems by the views)
and ``NotFound(…, slug=…)`` (404). A slug built with an f-string from a helper's parameter
(``_not_found("team", …)``) is filled in at each call that passes a literal.

A view's own problem types are those of its body and of the HTTP-layer helpers it calls (``gateway.api``,
``gateway.http``, ``gateway.problems``, the webhook receiver), followed call by call. Domain code raises domain exceptions that
views translate case by case, so it is not followed: an operation that passes the send gate says so in its
table entry (``raises=``), and the document adds what that module constructs.
"""
from __future__ import annotations

import ast
import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "webhooks", "templates_catalog")
SKIP = ("gateway/sandbox",)   # the sandbox is a separate server standing in for Meta and Twilio
HTTP_LAYER = ("gateway.api", "gateway.http", "gateway.problems", "webhooks.receiver")
# Werkzeug's own errors, which the app's handler turns into problems with the exception's name as title.
FRAMEWORK = (("not-found", 404, "Not Found"), ("method-not-allowed", 405, "Method Not Allowed"),
             ("bad-request", 400, "Bad Request"))


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int | None
    title: str | None


@dataclass
class _Func:
    module: str
    params: list[str]
    found: list[tuple] = field(default_factory=list)    # (status, title, slug: str | ast.JoinedStr)
    calls: list[tuple] = field(default_factory=list)    # ((module, name), {param index or name: literal})


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _own(node):
    """The nodes of a function's own body: nested functions are listed but not entered."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        child = todo.pop()
        yield child
        if not isinstance(child, (*_DEFS, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(child))


def _literal(node):
    return node.value if isinstance(node, ast.Constant) else None


def _callee_name(func) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _choices(node) -> list:
    """The literal values an expression can take: a constant, either branch of ``a if c else b``, the
    fallback of ``x or "default"``; an f-string node is kept for its caller to fill in."""
    if isinstance(node, ast.Constant) or isinstance(node, ast.JoinedStr):
        return [node.value if isinstance(node, ast.Constant) else node]
    if isinstance(node, ast.IfExp):
        return _choices(node.body) + _choices(node.orelse)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return _choices(node.values[-1])
    return [None]


def _constructed(call: ast.Call) -> list[tuple]:
    """(status, title, slug) for each way the call can build a problem; slug may be an f-string node."""
    name = _callee_name(call.func)
    args = call.args
    if name in ("Problem", "problem_response", "problem_document") and len(args) >= 2:
        out = []
        slug_node = _kw(call, "slug")
        titles = _choices(args[1])
        slugs = _choices(slug_node) if slug_node is not None else [None]
        # ``"A" if c else "B"`` in both title and slug is one condition: pair the branches, do not cross them.
        pairs = list(zip(titles, slugs)) if isinstance(args[1], ast.IfExp) and isinstance(slug_node, ast.IfExp) \
            and len(titles) == len(slugs) else [(t, s) for t in titles for s in slugs]
        for status in _choices(args[0]):
            for title, slug in pairs:
                title = title if isinstance(title, str) else None
                if slug is None and (slug_node is None or isinstance(slug_node, ast.Constant)):
                    slug = title.lower().replace(" ", "-") if title else None
                out.append((status if isinstance(status, int) else None, title,
                            slug if isinstance(slug, str | ast.JoinedStr) else None))
        return out
    if name and name.endswith("Refused") and len(args) >= 2:
        first, second = _literal(args[0]), _literal(args[1])
        if isinstance(first, str) and isinstance(second, int):
            return [(second, None, first)]
        if isinstance(first, int) and isinstance(second, str):
            return [(first, None, second)]
    if name and name.endswith("NotFound"):
        slug = _kw(call, "slug")
        if isinstance(slug, ast.Constant) and isinstance(slug.value, str):
            return [(404, None, slug.value)]
    return []


class _Index:
    def __init__(self):
        self.funcs: dict[tuple[str, str], _Func] = {}
        self.modules: set[str] = set()
        files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
                 if not any(str(p.relative_to(ROOT)).startswith(s) for s in SKIP)]
        for path in files:
            rel = path.relative_to(ROOT).with_suffix("")
            self.modules.add(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
        for path in files:
            rel = path.relative_to(ROOT).with_suffix("")
            self._read(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts),
                       ast.parse(path.read_text(encoding="utf-8")))

    def _read(self, module: str, tree: ast.Module) -> None:
        imports: dict[str, tuple[str, str | None]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    imports[alias.asname or alias.name] = (full, None) if full in self.modules \
                        else (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        top = [n for n in tree.body if isinstance(n, _DEFS)]
        local = {n.name: n.name for n in top}
        for node in top:
            self._function(module, node.name, node, local, imports)
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for m in (m for m in cls.body if isinstance(m, _DEFS)):
                self._function(module, f"{cls.name}.{m.name}", m, local, imports)
        # Module-level statements are a pseudo-function, so problems built there count too.
        rest = ast.Module(body=[n for n in tree.body if not isinstance(n, (*_DEFS, ast.ClassDef))], type_ignores=[])
        self._function(module, "<module>", rest, local, imports)

    def _function(self, module: str, qualname: str, node, local: dict, imports: dict) -> None:
        """Index one function; functions defined inside it (a view made in a factory) get their own entry,
        named as Python names them (``register.<locals>.metrics``)."""
        nested = {n.name: f"{qualname}.<locals>.{n.name}" for n in _own(node) if isinstance(n, _DEFS)}
        scope = {**local, **nested}
        params = [a.arg for a in node.args.args] if hasattr(node, "args") else []
        func = self.funcs[(module, qualname)] = _Func(module, params)
        for call in (c for c in _own(node) if isinstance(c, ast.Call)):
            made = _constructed(call)
            if made:
                func.found.extend(made)
                continue
            target = self._resolve(module, call.func, scope, imports)
            if target is not None:
                bound = {i: a.value for i, a in enumerate(call.args) if isinstance(a, ast.Constant)}
                bound |= {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
                func.calls.append((target, bound))
        for child in (n for n in _own(node) if isinstance(n, _DEFS)):
            self._function(module, nested[child.name], child, scope, imports)

    @staticmethod
    def _resolve(module, func, local, imports):
        if isinstance(func, ast.Name):
            if func.id in local:
                return module, local[func.id]
            if func.id in imports and imports[func.id][1] is not None:
                return imports[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            target = imports.get(func.value.id)
            if target is not None and target[1] is None:
                return target[0], func.attr
        return None

    def problems(self, key, follow, _stack=()) -> set[tuple]:
        """(status, title, slug or f-string node, {param: literal}) reached from a function."""
        func = self.funcs.get(key)
        if func is None or key in _stack:
            return set()
        out = {(s, t, slug, ()) for s, t, slug in func.found if slug is not None}
        for target, bound in func.calls:
            if not follow(target[0]):
                continue
            callee = self.funcs.get(target)
            if callee is None:
                continue
            names = {callee.params[i] if i < len(callee.params) else i: v for i, v in bound.items()
                     if isinstance(i, int)} | {k: v for k, v in bound.items() if isinstance(k, str)}
            for status, title, slug, env in self.problems(target, follow, (*_stack, key)):
                if isinstance(slug, ast.JoinedStr) and not env:
                    env = tuple(sorted((k, v) for k, v in names.items() if isinstance(k, str)))
                out.add((status, title, slug, env))
        return out


def _slug(slug, env) -> str | None:
    if isinstance(slug, str):
        return slug
    try:   # our own source's f-string, with the literals its caller passed
        return eval(compile(ast.Expression(slug), "<slug>", "eval"), {"__builtins__": {}}, dict(env))
    except Exception:
        return None


def _types(found) -> set[ProblemType]:
    out = set()
    for status, title, slug, env in found:
        text = _slug(slug, env)
        if text:
            out.add(ProblemType(text, status, title))
    return out


@functools.lru_cache(maxsize=1)
def _index() -> _Index:
    return _Index()


def catalog() -> dict[str, list[ProblemType]]:
    """Every problem type in the code: slug → its (status, title) variants."""
    index = _index()
    found = set()
    for key in index.funcs:
        found |= _types(index.problems(key, follow=lambda m: m in index.modules))
    found |= {ProblemType(*f) for f in FRAMEWORK}
    out: dict[str, list[ProblemType]] = {}
    for p in sorted(found, key=lambda p: (p.slug, p.status or 0, p.title or "")):
        out.setdefault(p.slug, []).append(p)
    # A variant without a status adds nothing when another has one.
    return {slug: [p for p in ps if p.status is not None] or ps for slug, ps in out.items()}


def of_view(view) -> set[ProblemType]:
    """The problem types a view (or the helpers of the HTTP layer it calls) can answer with."""
    original = inspect.unwrap(view)
    return of_function(original.__module__, original.__qualname__)


def of_function(module: str, qualname: str) -> set[ProblemType]:
    return _types(_index().problems((module, qualname), follow=lambda m: m.startswith(HTTP_LAYER)))


def of_module(module: str) -> set[ProblemType]:
    """Everything a module constructs (e.g. ``gateway.send_gate``: each refusal rule)."""
    index = _index()
    found = set()
    for key in (k for k in index.funcs if k[0] == module):
        found |= _types(index.problems(key, follow=lambda m: m == module))
    return found
