"""The Live API endpoint rules, in one place: the config check, the link and the emulator ask here.

Pure (no I/O, names are never resolved), so `pilive check` and the daemon refuse exactly the same
endpoints with the same words.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals (127.0.0.0/8, ::1); names are not resolved."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_host(endpoint: str) -> str:
    """The host of `endpoint`, or "" when it has none or does not parse."""
    try:
        return urlsplit(endpoint).hostname or ""
    except ValueError:
        return ""


def shown_endpoint(endpoint: str) -> str:
    """`endpoint` as safe to show: never the query string, which might carry a key."""
    return endpoint.split("?", 1)[0] + ("?…" if "?" in endpoint else "")


def endpoint_problems(endpoint: str) -> list[str]:
    """What is wrong with `endpoint`, one sentence per broken rule; [] when it is usable.

    wss:// to a host (plain ws:// only to loopback: the key would cross the network in the
    clear), no user information, query or fragment (the key goes in a header), and no path (the
    API version is added by the link).
    """
    return _url_problems(
        endpoint,
        secure="wss",
        plain="ws",
        path=False,
        credential="the API key",
        no_path_why=" (the API version comes from live.api_version)",
    )


def token_url_problems(url: str) -> list[str]:
    """What is wrong with a token service URL (`live.token_url`), one sentence per broken rule
    (see `https_url_problems`; a path is allowed: it names the token endpoint)."""
    return https_url_problems(url, path=True, credential="the device credential")


def https_url_problems(url: str, *, path: bool, credential: str) -> list[str]:
    """What is wrong with an HTTPS URL that `credential` is sent to, one sentence per rule.

    https:// to a host (plain http:// only to loopback: the credential, and what comes back,
    would cross the network in the clear), no user information, query or fragment (the
    credential goes in a header, never in the URL), and a path only where `path` allows one.
    """
    return _url_problems(url, secure="https", plain="http", path=path, credential=credential)


def _url_problems(
    url: str, *, secure: str, plain: str, path: bool, credential: str, no_path_why: str = ""
) -> list[str]:
    """The rules both kinds of URL share, in the words of their own schemes."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        return [f"is not a valid URL ({exc})"]
    problems = []
    if parts.scheme not in (secure, plain):
        problems.append(f"must start with {secure}:// (or {plain}:// for loopback)")
    elif not host:
        problems.append("must name a host")
    elif parts.scheme == plain and not is_loopback_host(host):
        problems.append(
            f"plain {plain}:// is allowed only to a loopback address (127.0.0.1, ::1, localhost); "
            f"use {secure}://"
        )
    if parts.username is not None or parts.password is not None:
        problems.append("must not contain user information")
    if parts.query or parts.fragment:
        problems.append(f"must not have a query or fragment ({credential} goes in a header)")
    if not path and parts.path not in ("", "/"):
        problems.append(f"must be a base URL without a path{no_path_why}")
    return problems
