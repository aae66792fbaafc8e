"""What may be shown of a string that can carry a secret: a URL reduced to where it points, `name=value`
secrets masked.

Endpoints carry their credentials in URLs (`user:password@`, an API key in the path or the query), and
libraries print URLs in their own messages (web3's "Successfully disconnected from: <url>", aiohttp's errors).
Every log line passes through `redact_text` once rendered (`logging.configure`), the libraries' lines and
exception texts included, so a secret never depends on each call site remembering to leave it out. The CLI
shows the URLs it prints with `mask_password`.
"""

from __future__ import annotations

import re

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"\\<>]*")
_SECRET_PAIR = re.compile(
    r"(?i)\b([a-z_-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth))=([^&\s'\"\\]+)"
)
_ONE_HOST = r"(?:\[[0-9a-fA-F:.]+\]|[^:@,\[\]]*)(?::[0-9]*)?"
_HOST_PORT = re.compile(rf"{_ONE_HOST}(?:,{_ONE_HOST})*")  # host[:port], or a list of them (libpq's multi-host)


def redact_url(url: str) -> str:
    """`scheme://host[:port]` of a URL: no user, password, path, query or fragment (an API key may be in any
    of them). A URL whose host cannot be told apart from a password (a `#`, `/` or `?` left unencoded in it)
    shows as `scheme://***`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    if ("@" in rest and "@" not in authority) or not _HOST_PORT.fullmatch(host):
        host = "***"  # the user part runs past a '/', '?' or '#': what looks like the host may be the password
    return f"{scheme}://{host}"


def mask_password(url: str) -> str:
    """`url` for a person to read: all of it but its password (shown as `***`) and `password=...`-like query
    values; a URL that does not parse shows as `redact_url` shows it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url  # no URL (a host:port list, as KAFKA_BOOTSTRAP)
    if redact_url(url).endswith("://***"):
        return redact_url(url)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    user, at, host = authority.rpartition("@")
    if ":" in user:
        user = user.split(":", 1)[0] + ":***"
    return f"{scheme}://{user}{at}{host}" + _SECRET_PAIR.sub(r"\1=***", rest[len(authority):])


def redact_text(text: str) -> str:
    """`text` with every URL in it reduced by `redact_url` and every `password=...`-like pair masked."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if "=" in text:
        text = _SECRET_PAIR.sub(r"\1=***", text)
    return text
