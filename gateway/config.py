"""Settings read from the environment, validated once at start.

Every problem is reported on its own line naming the variable and an example
value, so an operator can fix a deployment in one pass instead of one restart
per mistake.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    """One or more settings are missing or malformed; str() has one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    keyring_file: Path | None = None
    master_keys: str | None = None          # "kid:base64key,kid:base64key"
    master_key_id: str | None = None        # which of master_keys is current
    blind_index_key: str | None = None      # base64, 32 bytes
    max_request_bytes: int = 4_194_304      # Meta sends up to 3 MB
    public_url: str | None = None           # https://gateway.example.com, as providers call it
    log_level: str = "INFO"
    sweep_interval_s: float = 5.0
    pool_max_size: int = 8
    # Level-1 assistant's optional LLM (an OpenAI-compatible chat-completions endpoint); unset = offline.
    assistant_llm_url: str | None = None     # base URL, e.g. http://127.0.0.1:11434/v1
    assistant_llm_model: str | None = None
    assistant_llm_key: str | None = None
    assistant_llm_timeout_s: float = 8.0
    # Bearer token for GET /metrics; unset, only loopback clients may scrape.
    metrics_token: str | None = field(default=None, repr=False)
    # Web console sessions end after this long without a page, and in any case this long after sign-in.
    console_idle_minutes: int = 120
    console_session_hours: int = 12


_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


def _check_url(name: str, value: str | None, schemes: set[str], example: str,
               problems: list[str]) -> str:
    if not value:
        problems.append(f"{name} is not set; e.g. {name}={example}")
        return ""
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        problems.append(
            f"{name} must be a {'/'.join(sorted(schemes))} URL, got scheme {scheme or '(none)'!r}; "
            f"e.g. {name}={example}")
    return value


def _number(env, name: str, default, lo, hi, problems: list[str], cast=int, what="a whole number"):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = cast(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        problems.append(f"{name} must be {what} from {lo} to {hi}; e.g. {name}={default}")
        return default
    return value


def load_settings(env: dict | None = None) -> Settings:
    """Build Settings from the environment or raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    database_url = _check_url("DATABASE_URL", env.get("DATABASE_URL"), {"postgres", "postgresql"},
                              "postgresql://gateway@127.0.0.1:5432/gateway", problems)
    redis_url = _check_url("REDIS_URL", env.get("REDIS_URL"), {"redis", "rediss", "unix", "valkey"},
                           "redis://127.0.0.1:6379/0", problems)

    keyring_file = env.get("GATEWAY_KEYRING_FILE") or None
    master_keys = env.get("GATEWAY_MASTER_KEYS") or None
    if keyring_file and master_keys:
        problems.append("GATEWAY_KEYRING_FILE and GATEWAY_MASTER_KEYS are both set; keep one "
                        "(the file for a single host, the variables for a platform's secret store)")
    elif keyring_file:
        if not Path(keyring_file).is_file():
            problems.append(f"GATEWAY_KEYRING_FILE={keyring_file} does not exist; create one with "
                            f"`gateway keys init --file {keyring_file}`")
    elif master_keys:
        if not env.get("GATEWAY_BLIND_INDEX_KEY"):
            problems.append("GATEWAY_BLIND_INDEX_KEY is not set (needed with GATEWAY_MASTER_KEYS); "
                            "e.g. GATEWAY_BLIND_INDEX_KEY=$(python -c 'import os,base64;"
                            "print(base64.b64encode(os.urandom(32)).decode())')")
    else:
        problems.append("no master key: set GATEWAY_KEYRING_FILE=/path/keyring.json (made by "
                        "`gateway keys init`) or GATEWAY_MASTER_KEYS=mk1:<base64 32 bytes>")

    log_level = (env.get("GATEWAY_LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        problems.append(f"GATEWAY_LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}; "
                        f"e.g. GATEWAY_LOG_LEVEL=INFO")
        log_level = "INFO"

    public_url = (env.get("GATEWAY_PUBLIC_URL") or "").rstrip("/") or None
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            problems.append("GATEWAY_PUBLIC_URL must be the base URL providers call, without a query; "
                            "e.g. GATEWAY_PUBLIC_URL=https://gateway.example.com")

    llm_url = (env.get("GATEWAY_ASSISTANT_LLM_URL") or "").rstrip("/") or None
    llm_model = env.get("GATEWAY_ASSISTANT_LLM_MODEL") or None
    if llm_url:
        parts = urlsplit(llm_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append("GATEWAY_ASSISTANT_LLM_URL must be the base URL of an OpenAI-compatible API; "
                            "e.g. GATEWAY_ASSISTANT_LLM_URL=http://127.0.0.1:11434/v1")
        if not llm_model:
            problems.append("GATEWAY_ASSISTANT_LLM_MODEL is not set (needed with GATEWAY_ASSISTANT_LLM_URL); "
                            "e.g. GATEWAY_ASSISTANT_LLM_MODEL=llama3.1:8b")

    metrics_token = env.get("GATEWAY_METRICS_TOKEN") or None
    if metrics_token is not None and (len(metrics_token) < 16 or any(ch.isspace() for ch in metrics_token)):
        problems.append("GATEWAY_METRICS_TOKEN must be at least 16 characters without spaces; e.g. "
                        "GATEWAY_METRICS_TOKEN=$(python -c 'import secrets;print(secrets.token_urlsafe(32))')")
        metrics_token = None

    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        keyring_file=Path(keyring_file) if keyring_file else None,
        master_keys=master_keys,
        master_key_id=env.get("GATEWAY_MASTER_KEY_ID") or None,
        blind_index_key=env.get("GATEWAY_BLIND_INDEX_KEY") or None,
        max_request_bytes=_number(env, "GATEWAY_MAX_REQUEST_BYTES", 4_194_304, 1024, 64 * 1_048_576, problems),
        public_url=public_url,
        log_level=log_level,
        sweep_interval_s=_number(env, "GATEWAY_SWEEP_INTERVAL", 5.0, 0.1, 3600.0, problems, float,
                                 "a number of seconds"),
        pool_max_size=_number(env, "GATEWAY_DB_POOL_SIZE", 8, 1, 200, problems),
        assistant_llm_url=llm_url,
        assistant_llm_model=llm_model,
        assistant_llm_key=env.get("GATEWAY_ASSISTANT_LLM_KEY") or None,
        assistant_llm_timeout_s=_number(env, "GATEWAY_ASSISTANT_LLM_TIMEOUT_S", 8.0, 0.1, 120.0, problems, float,
                                        "a number of seconds"),
        metrics_token=metrics_token,
        console_idle_minutes=_number(env, "GATEWAY_CONSOLE_IDLE_MINUTES", 120, 1, 7 * 24 * 60, problems),
        console_session_hours=_number(env, "GATEWAY_CONSOLE_SESSION_HOURS", 12, 1, 24 * 90, problems),
    )
    if not problems:
        # Parse the keyring now so a malformed key is a start-up error, not a 500 later.
        from gateway.crypto import Keyring, KeyringError
        try:
            Keyring.from_settings(settings)
        except KeyringError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    return settings
