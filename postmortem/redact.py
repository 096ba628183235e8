"""Hide the secrets in JSON-RPC URLs before they reach a message, a log line or an exception.

Hosted nodes put the API key in the URL: in the path (Infura ``/v3/<32 hex>``, Alchemy
``/v2/<key>``, QuickNode ``/<token>/``, Ankr ``/eth/<64 hex>``), in the query
(``?apikey=...``) or as basic-auth user info. ``redact_url`` keeps what helps a user recognise
the endpoint (scheme, host, port and ordinary path words such as ``v3`` or ``mainnet``) and
replaces every part that may be secret with ``***``. ``strip_url`` is the coarse form for what
is stored (run records): only scheme, host and port survive. ``redact_urls_in`` applies either to
every URL in nested data.

The path rule is a heuristic that errs on the side of hiding: a segment is masked when it
looks like a token (long, or mixing letters and digits, or mixed case, or right after a
version segment such as ``v2``). Over-redacting a harmless word costs nothing; leaking a key
in a CI log costs the key.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"

_VERSION_SEGMENT = re.compile(r"^v\d+$", re.IGNORECASE)
_HEXISH = re.compile(r"^(0x)?[0-9a-fA-F]{16,}$")
# Secrets shorter than this are not hunted for inside free text (a 2-letter query value would
# otherwise mangle ordinary words); the whole URL and its path are still replaced.
_MIN_SECRET_IN_TEXT = 3


def _looks_like_key(segment: str, after_version: bool) -> bool:
    """True when a path segment may be an API key or access token."""
    s = unquote(segment)
    if not s:
        return False
    has_digit = any(c.isdigit() for c in s)
    has_alpha = any(c.isalpha() for c in s)
    has_upper = any(c.isupper() for c in s)
    has_lower = any(c.islower() for c in s)
    if after_version and len(s) >= 6:  # Infura /v3/<key>, Alchemy /v2/<key>
        return True
    if _HEXISH.match(s):  # QuickNode / Ankr / GetBlock tokens, UUID-less hex keys
        return True
    if len(s) >= 12 and has_digit and has_alpha:  # UUIDs, mixed tokens
        return True
    if len(s) >= 16 and has_upper and has_lower:  # base64-ish keys without digits
        return True
    if len(s) >= 12 and s.rstrip("=") != s:  # base64 padding
        return True
    return len(s) >= 32  # nobody types a 32-character path word by hand


def _split_url(url: str) -> tuple[str, str, str, str, str, str]:
    """Split into (scheme, userinfo, hostport, path, query, fragment) without validating.

    Written by hand rather than with ``urllib.parse.urlsplit`` so that a malformed port or
    host never raises: redaction must work on exactly the URLs that are broken.
    """
    rest = url
    fragment = query = ""
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    if "?" in rest:
        rest, query = rest.split("?", 1)
    scheme = ""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://", rest)
    if m:
        scheme, rest = m.group(1), rest[m.end():]
    elif rest.startswith("//"):
        rest = rest[2:]
    netloc, slash, path = rest.partition("/")
    path = slash + path
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    return scheme, userinfo, hostport, path, query, fragment


def _path_segments(path: str) -> list[tuple[str, bool]]:
    """Each segment of ``path`` with whether it may be a key (a segment right after ``v2`` may be)."""
    out = []
    previous = ""
    for segment in path.split("/"):
        out.append((segment, _looks_like_key(segment, bool(_VERSION_SEGMENT.match(previous)))))
        if segment:
            previous = segment
    return out


def _path_secrets(path: str) -> list[str]:
    return [segment for segment, secret in _path_segments(path) if secret]


def _redact_path(path: str) -> str:
    return "/".join(MASK if secret else segment for segment, secret in _path_segments(path))


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        if not part:
            parts.append(part)
        elif "=" in part:
            key = part.split("=", 1)[0]
            parts.append(f"{MASK if _looks_like_key(key, False) else key}={MASK}")
        else:  # a bare token may be the key itself (``?<apikey>``)
            parts.append(MASK)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """Return ``url`` with user info, query values, fragment and key-like path segments masked.

    Scheme, host and port are kept so a user can still tell which endpoint a message is about.
    ``redact_url("https://mainnet.infura.io/v3/0123...cdef")`` is
    ``"https://mainnet.infura.io/v3/***"``. Never raises; ``None`` or ``""`` give ``""``.
    """
    if not url:
        return ""
    scheme, userinfo, hostport, path, query, fragment = _split_url(str(url))
    out = f"{scheme}://" if scheme else ("//" if userinfo else "")
    if userinfo:
        out += (f"{MASK}:{MASK}" if ":" in userinfo else MASK) + "@"
    out += hostport + _redact_path(path)
    if query:
        out += "?" + _redact_query(query)
    if fragment:
        out += "#" + MASK
    return out


def secret_parts(url: str) -> list[str]:
    """The substrings of ``url`` that ``redact_url`` hides (user, password, keys, query values)."""
    if not url:
        return []
    _, userinfo, _, path, query, fragment = _split_url(str(url))
    secrets: list[str] = []
    if userinfo:
        secrets.extend(p for p in userinfo.split(":", 1) if p)
    secrets.extend(_path_secrets(path))
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if not eq:
            value, key = key, ""
        if value:
            secrets.append(value)
        if key and _looks_like_key(key, False):
            secrets.append(key)
    if fragment:
        secrets.append(fragment)
    return secrets


def strip_url(url: str) -> str:
    """``url`` with credentials, path and query replaced by ``***`` (API keys live there).

    ``https://eth-mainnet.g.alchemy.com/v2/KEY`` -> ``https://eth-mainnet.g.alchemy.com/***``.
    Coarser than ``redact_url`` on purpose: it keeps only where the node is, never anything that
    may be a key however short, so it is the last line of defence for what is written to disk.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return MASK  # unparsable (e.g. a bad port): keep nothing
    if not parts.scheme or not host:
        return MASK
    secret = parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment
    return urlunsplit((parts.scheme, host, "/" + MASK if secret else "", "", ""))


_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def redact_urls_in(value: Any, redact: Callable[[str], str] = redact_url) -> Any:
    """``value`` (nested dicts, lists, tuples) with ``redact`` applied to every URL in every string
    (a string that is a URL, or a URL inside a sentence); tuples come back as lists, as in JSON."""
    if isinstance(value, str):
        return _URL_IN_TEXT.sub(lambda m: redact(m.group()), value) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact_urls_in(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_urls_in(v, redact) for v in value]
    return value


def redact_text(text: str, url: str) -> str:
    """Scrub a known secret URL, and each of its secret parts, from arbitrary ``text``.

    For exception messages from HTTP libraries, which quote the URL whole or in pieces
    (``host='...', port=443): ... url: /v3/<key>``). The whole URL becomes its redacted form;
    each secret part (raw, percent-encoded or decoded) becomes ``***`` wherever it stands as
    a whole token.
    """
    if not text or not url:
        return text or ""
    url = str(url)
    safe = redact_url(url)
    out = str(text)
    for variant in {url, url.rstrip("/"), unquote(url)}:
        if variant:
            out = out.replace(variant, safe)
    secrets = set()
    for secret in secret_parts(url):
        secrets.update({secret, unquote(secret), quote(unquote(secret), safe="")})
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < _MIN_SECRET_IN_TEXT or secret == MASK:
            continue
        # Whole-token match only, so a short value such as "eth" does not eat "ethereum".
        out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, out)
    return out


class _RedactingFilter(logging.Filter):
    """Rewrites log records of HTTP libraries (urllib3 logs request paths at DEBUG) so that
    the secret parts of every registered URL never reach a handler."""

    def __init__(self) -> None:
        super().__init__("postmortem-redact")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: leave it to logging
            return True
        if any(s in text for s in self.secrets):
            for s in sorted(self.secrets, key=len, reverse=True):
                text = text.replace(s, MASK)
            record.msg, record.args = text, ()
        return True


_FILTER = _RedactingFilter()
_FILTERED_LOGGERS = ("urllib3.connectionpool", "urllib3", "requests", "web3.providers.HTTPProvider", "web3")


def install_log_redaction(url: str) -> None:
    """Keep the secret parts of ``url`` out of the logs of the HTTP stack (idempotent)."""
    parts = [p for p in secret_parts(url) if len(p) >= 4]
    if not parts:
        return
    _FILTER.secrets.update(parts)
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
