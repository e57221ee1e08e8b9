"""Typed readers for environment variables.

Every reader raises ImproperlyConfigured naming the variable and the accepted form, so a bad
value stops start-up with a message a person can act on instead of a stack trace deep in Django.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}.")
    return number


def env_bytes(name: str, default: int) -> int:
    """A size such as 512MiB, 2GiB, 1.5GB or a plain number of bytes."""
    value = _raw(name)
    if value in (None, ""):
        return default
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 10**3, "mb": 10**6, "gb": 10**9, "b": 1, "": 1}
    lowered = value.lower().replace(" ", "")
    number_part = lowered.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = lowered[len(number_part) :]
    try:
        return int(float(number_part) * units[unit])
    except (KeyError, ValueError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a size: write e.g. 512MiB, 2GiB or 1000000."
        ) from None


def env_choice(name: str, default: str, choices: list[str]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_mapping(name: str, default: dict[str, str]) -> dict[str, str]:
    """`KEY=value,KEY2=value2` (e.g. DICOM_AE_ALLOWLIST=CT_SCANNER1=radiology,ECHO1=cardiology)."""
    value = _raw(name)
    if value is None:
        return dict(default)
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not KEY=value; write comma-separated pairs, e.g. A=x,B=y."
            )
        mapping[key.strip()] = val.strip()
    return mapping


def env_flags(name: str, default: dict[str, bool]) -> dict[str, bool]:
    """`flag=on,other=off` as a {flag: bool} mapping (true/false, yes/no, on/off, 1/0)."""
    flags: dict[str, bool] = {}
    for key, val in env_mapping(name, {k: str(v) for k, v in default.items()}).items():
        lowered = val.lower()
        if lowered not in _TRUE | _FALSE:
            raise ImproperlyConfigured(f"{name}: {key}={val!r} is not on/off (true/false, yes/no, 1/0).")
        flags[key] = lowered in _TRUE
    return flags


def env_path(name: str, default: Path | None, *, base: Path) -> Path | None:
    value = _raw(name)
    if value in (None, ""):
        return default
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def database_config(name: str, default_url: str) -> dict:
    url = env_str(name, default_url)
    scheme = urlparse(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"{name}={url!r}: unsupported scheme {scheme!r}. Use sqlite:///path/to/db.sqlite3 or "
            "postgres://user@host:5432/dbname."
        )
    try:
        config = dj_database_url.parse(url)
    except Exception as exc:  # dj_database_url raises several kinds on malformed input
        raise ImproperlyConfigured(f"{name}={url!r} could not be parsed: {exc}") from None
    # PostgreSQL: keep a connection per web thread / worker process for a minute instead of opening
    # one per request (a TCP + authentication round trip on every API call), checked for health
    # before each request reuses it (a restarted server costs one reconnect, not an error).
    # SQLite opens a file: nothing to save, and closing at the end of each request releases it.
    default_age = 60 if scheme != "sqlite" else 0
    config["CONN_MAX_AGE"] = env_int(f"{name}_CONN_MAX_AGE", default_age, minimum=0)
    config["CONN_HEALTH_CHECKS"] = config["CONN_MAX_AGE"] > 0
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={url!r} names no database.")
    return config


def broker_url(name: str, default_url: str) -> str:
    url = env_str(name, default_url)
    scheme = urlparse(url).scheme
    if scheme not in {"filesystem", "redis", "rediss", "memory"}:
        raise ImproperlyConfigured(
            f"{name}={url!r}: unsupported broker. Use filesystem:// (embedded, no server) or "
            "redis://host:6379/0."
        )
    return url


def secret_key(name: str, key_file: Path) -> str:
    """The secret from the environment, else one generated once into key_file (mode 0600)."""
    value = _raw(name)
    if value:
        return value
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # another process made it first (web and worker start together)
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    for _ in range(50):
        value = key_file.read_text().strip()
        if value:
            return value
        time.sleep(0.05)
    raise ImproperlyConfigured(f"{key_file} is empty: delete it to generate a new secret key.")
