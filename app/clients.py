"""Who a call comes from: its Gradio session, and the client address behind it.

A session (a browser page, a gradio_client Client) is chosen by the client and costs nothing to
make; an address is what the network says. Libraries are kept per session; what one address
may hold (libraries, store bytes, uploads) is bounded per address. The address is the TCP peer
as the server reports it (uvicorn itself reads X-Forwarded-For from a proxy on the loopback
interface), or, behind a proxy (`EPIC_BEHIND_PROXY=1`, the default on a Hugging Face Space,
where the peer is the Space's proxy), the last X-Forwarded-For entry: the one that proxy
appended, which a client cannot forge. IPv6 addresses count by their /64 network, which one
subscriber usually holds whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

UNKNOWN = "unknown"
MAX_ADDRESS_CHARS = 64


class Visitor(str):
    """A session id (the string itself) that also knows the address it came from: handlers
    key libraries by the session and bound what one address holds by `client`."""

    client: str

    def __new__(cls, session: str, client: str = UNKNOWN) -> Visitor:
        visitor = super().__new__(cls, session)
        visitor.client = client
        return visitor


def client_of(session: str) -> str:
    """The address a session came from ("local" for calls made in-process, as the tests'
    direct handler calls are)."""
    return getattr(session, "client", None) or "local"


def client_address(host: str | None, headers: Mapping[str, str] | None,
                   behind_proxy: bool) -> str:
    """The client address of a request from its peer `host` and its headers."""
    address = host or ""
    if behind_proxy and headers is not None:
        forwarded = headers.get("x-forwarded-for") or ""
        address = forwarded.split(",")[-1].strip() or address
    if not address:
        return UNKNOWN
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_ADDRESS_CHARS]  # not an address (a test client's name): as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def visitor_of(request: object, behind_proxy: bool) -> Visitor:
    """The visitor of a Gradio call (`gr.Request`, or None for a call made in-process)."""
    session = getattr(request, "session_hash", None) or "local"
    client = getattr(request, "client", None)
    headers = getattr(request, "headers", None)
    if client is None and headers is None:
        return Visitor(session, "local")
    return Visitor(session, client_address(getattr(client, "host", None), headers, behind_proxy))
