"""Settings and faults: one global layer plus layers per scope, merged per request.

A *scope* is any id a request names: a Cloud API phone-number id, a Messenger page id
(or ``me``), a Twilio AccountSid, sender number or MessagingServiceSid, or a recipient
as ``to:<digits or PSID>``. The effective settings of a request are the defaults, then
the global layer, then each matching scope (channel first, recipient last): the most
specific wins.

Faults fire in this order: latency (always) → timeout → 429 → 5xx → (the body is
validated) → the provider error code. ``max_faults`` in a layer caps how many faults
that layer may still fire (e.g. "the next 2 sends get a 429, then all is well").
"""
from __future__ import annotations

import random
import threading
from typing import Any, Iterable

GLOBAL = "*"

DEFAULTS: dict[str, Any] = {
    # faults
    "latency_ms": 0,
    "latency_jitter_ms": 0,
    "status_429_rate": 0.0,
    "retry_after_s": 1,
    "status_5xx_rate": 0.0,
    "status_5xx_code": 500,
    "timeout_rate": 0.0,
    "timeout_s": 35.0,
    "whatsapp_error_code": None,
    "messenger_error_code": None,
    "twilio_error_code": None,
    "error_rate": 1.0,
    "error_details": None,
    "async_failure": False,
    "max_faults": None,
    # credentials the sandbox checks (None: any non-empty value is accepted)
    "access_token": None,
    "twilio_auth_token": None,
    # callbacks
    "gateway_url": None,
    "app_secret": None,
    "status_delay_ms": 100,
    "statuses": ["sent", "delivered", "read"],
    "callbacks": True,
    "echoes": True,            # Messenger/Instagram: message_echoes for each accepted send
    "batch_window_ms": 20,
    # identity of the simulated business
    "waba_id": "SANDBOX_WABA",
    "display_phone_number": "15550001234",
    "platform": "messenger",
    "twilio_from": "+15005550006",
    # templates
    "template_status": "APPROVED",
    "template_review_ms": 100,    # an edited template gets its review (template_status) this long after the edit
    "strict_templates": False,
}

_RATES = ("status_429_rate", "status_5xx_rate", "timeout_rate", "error_rate")
_NON_NEGATIVE = ("latency_ms", "latency_jitter_ms", "retry_after_s", "timeout_s", "status_delay_ms",
                 "batch_window_ms", "template_review_ms")
_CODES = ("whatsapp_error_code", "messenger_error_code", "twilio_error_code")
_STRINGS = ("access_token", "twilio_auth_token", "gateway_url", "app_secret", "error_details", "waba_id",
            "display_phone_number", "twilio_from")
_BOOLS = ("async_failure", "callbacks", "strict_templates", "echoes")
STATUS_WORDS = ("sent", "delivered", "read", "played")
TEMPLATE_STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL")


class ConfigError(ValueError):
    pass


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return value


def check(update: dict) -> dict:
    """The update with its values checked (None removes a key from the layer); raises ConfigError."""
    out: dict[str, Any] = {}
    for key, value in update.items():
        if key not in DEFAULTS:
            raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(DEFAULTS))}")
        if value is None:
            out[key] = None
            continue
        if key in _RATES:
            if not 0 <= _number(key, value) <= 1:
                raise ConfigError(f"{key} is a probability between 0 and 1, got {value!r}")
        elif key in _NON_NEGATIVE:
            if _number(key, value) < 0:
                raise ConfigError(f"{key} must be >= 0, got {value!r}")
        elif key in _CODES or key == "max_faults":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
        elif key == "status_5xx_code":
            if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
                raise ConfigError(f"status_5xx_code must be an integer 500-599, got {value!r}")
        elif key in _STRINGS:
            if not isinstance(value, str):
                raise ConfigError(f"{key} must be a string, got {value!r}")
            if key == "gateway_url" and not value.startswith(("http://", "https://")):
                raise ConfigError(f"gateway_url must be an http(s) base URL, got {value!r}")
        elif key in _BOOLS:
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false, got {value!r}")
        elif key == "statuses":
            if not isinstance(value, list) or any(v not in STATUS_WORDS for v in value):
                raise ConfigError(f"statuses must be a list drawn from {list(STATUS_WORDS)}, got {value!r}")
        elif key == "platform":
            if value not in ("messenger", "instagram"):
                raise ConfigError(f"platform must be 'messenger' or 'instagram', got {value!r}")
        elif key == "template_status":
            if value not in TEMPLATE_STATUSES:
                raise ConfigError(f"template_status must be one of {list(TEMPLATE_STATUSES)}, got {value!r}")
        out[key] = value
    return out


class Faults:
    """The layers, their fault budgets and the random source; safe to use from many threads."""

    def __init__(self, initial: dict | None = None, seed: int | None = None):
        self._lock = threading.Lock()
        self.rng = random.Random(seed)
        self.layers: dict[str, dict] = {GLOBAL: {}}
        self.remaining: dict[str, int] = {}
        if initial:
            self.update(GLOBAL, initial)

    # -- configuration ---------------------------------------------------------------------------------
    def update(self, scope: str | None, values: dict, *, replace: bool = False) -> dict:
        checked = check(values)
        scope = scope or GLOBAL
        with self._lock:
            layer = {} if replace else dict(self.layers.get(scope, {}))
            for key, value in checked.items():
                if value is None:
                    layer.pop(key, None)
                else:
                    layer[key] = value
            if layer or scope == GLOBAL:
                self.layers[scope] = layer     # replaced, never mutated: readers need no lock
            else:
                self.layers.pop(scope, None)
            if "max_faults" in checked or replace:
                if layer.get("max_faults") is None:
                    self.remaining.pop(scope, None)
                else:
                    self.remaining[scope] = layer["max_faults"]
            return dict(layer)

    def drop(self, scope: str | None) -> None:
        with self._lock:
            if scope in (None, GLOBAL):
                self.layers = {GLOBAL: {}}
                self.remaining = {}
            else:
                self.layers.pop(scope, None)
                self.remaining.pop(scope, None)

    def reseed(self, seed: int | None) -> None:
        self.rng.seed(seed)

    def describe(self) -> dict:
        with self._lock:
            return {"global": dict(self.layers.get(GLOBAL, {})),
                    "scopes": {k: dict(v) for k, v in self.layers.items() if k != GLOBAL},
                    "faults_remaining": dict(self.remaining),
                    "defaults": dict(DEFAULTS)}

    # -- per request -----------------------------------------------------------------------------------
    def effective(self, scopes: Iterable[str]) -> dict:
        """Defaults ← global ← each scope in order. ``_budget`` names the most specific layer with max_faults."""
        layers = self.layers
        cfg = dict(DEFAULTS)
        cfg.update(layers.get(GLOBAL) or {})
        budget = GLOBAL if "max_faults" in (layers.get(GLOBAL) or {}) else None
        for scope in scopes:
            layer = layers.get(scope)
            if layer:
                cfg.update(layer)
                if "max_faults" in layer:
                    budget = scope
        cfg["_budget"] = budget
        return cfg

    def _roll(self, rate: float) -> bool:
        return rate >= 1 or (rate > 0 and self.rng.random() < rate)

    def _spend(self, cfg: dict) -> bool:
        """May a fault fire? Spends one from the layer's budget when there is one."""
        scope = cfg.get("_budget")
        if scope is None:
            return True
        with self._lock:
            left = self.remaining.get(scope)
            if left is None:
                return True
            if left <= 0:
                return False
            self.remaining[scope] = left - 1
            return True

    def latency_s(self, cfg: dict) -> float:
        ms = cfg["latency_ms"]
        jitter = cfg["latency_jitter_ms"]
        if jitter:
            ms += self.rng.uniform(0, jitter)
        return ms / 1000.0

    def infrastructure(self, cfg: dict) -> str | None:
        """'timeout', '429', '5xx' or None: the faults that strike before the body is read."""
        if cfg["timeout_rate"] and self._roll(cfg["timeout_rate"]) and self._spend(cfg):
            return "timeout"
        if cfg["status_429_rate"] and self._roll(cfg["status_429_rate"]) and self._spend(cfg):
            return "429"
        if cfg["status_5xx_rate"] and self._roll(cfg["status_5xx_rate"]) and self._spend(cfg):
            return "5xx"
        return None

    def provider_error(self, cfg: dict, key: str) -> int | None:
        """The configured provider error code for a valid body, if it fires this time."""
        code = cfg.get(key)
        if code is None:
            return None
        if self._roll(cfg["error_rate"]) and self._spend(cfg):
            return code
        return None
