"""Who an agent is: the library an MCP client names with a secret header.

Gradio's MCP server runs every queued tool through one `gradio_client` Client of its own (a
loopback to this app), so all agents reach the app under that one client's Gradio session; it
forwards each agent's HTTP headers with the call, and marks the call `x-gradio-user: mcp` (an
agent's own value of that header is dropped). An agent therefore names its library with the
`X-EPIC-Visitor` header, a secret of its own: the session is a hash of it, so one agent can
neither read another's chunks nor guess its session, and a call marked as MCP without the
header is refused, never filed under the loopback client's shared session. Any other client
may send the header too: it then names that client's library in the same way.

The loopback call comes from 127.0.0.1, whose X-Forwarded-For uvicorn trusts: left alone, every
agent would share the loopback's address (and its allowances), or claim any address it
forwards. `AgentAddress` writes, on each request to the MCP server, the address the app would
have seen (app/clients.py) as the only X-Forwarded-For entry, which the loopback call forwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from app.clients import client_address

__all__ = ["HEADER", "MAX_SECRET_CHARS", "MIN_SECRET_CHARS", "TOOLS", "AgentAddress",
           "agent_session"]

HEADER = "x-epic-visitor"
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 256
# The endpoints an MCP call may run (app/mcp_tools.py's handlers): whatever Gradio's MCP server
# lists, a call it forwards to any other endpoint is refused.
TOOLS = ("epic_compile_text", "epic_list_library", "epic_compare", "epic_inspect_summary")
MCP_PATH = "/gradio_api/mcp"  # Gradio's MCP server (its streamable HTTP and SSE routes)
MCP_USER = ("x-gradio-user", "mcp")  # the mark of Gradio's MCP loopback client (gradio/mcp.py)


def agent_session(headers: Mapping[str, str] | None, endpoint: str | None = None) -> str | None:
    """The session a call's `X-EPIC-Visitor` secret names (None when it names none); a
    ValueError for a secret too short or too long, or an MCP call without one or of an
    `endpoint` (a handler's name) that is no tool."""
    secret = headers.get(HEADER) if headers is not None else None
    mcp = headers is not None and headers.get(MCP_USER[0]) == MCP_USER[1]
    if mcp and endpoint is not None and endpoint not in TOOLS:
        raise ValueError(f"{endpoint} is not a tool of this app: use {', '.join(TOOLS)}")
    if secret is None:
        if mcp:
            raise ValueError(f"set the {HEADER} header to a secret of your own (at least "
                             f"{MIN_SECRET_CHARS} characters): it names your library")
        return None
    if not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS:
        raise ValueError(f"the {HEADER} header must hold {MIN_SECRET_CHARS} to "
                         f"{MAX_SECRET_CHARS} characters, got {len(secret)}")
    return "agent-" + hashlib.sha256(secret.encode()).hexdigest()[:32]


class AgentAddress:
    """ASGI middleware: a request to the MCP server carries its client's address (the peer,
    or behind a proxy the last X-Forwarded-For entry) as its one X-Forwarded-For entry."""

    def __init__(self, app: Any, behind_proxy: bool) -> None:
        self.app, self.behind_proxy = app, behind_proxy

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and MCP_PATH in scope.get("path", ""):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", [])}
            peer = scope.get("client") or (None, None)
            address = client_address(peer[0], headers, self.behind_proxy)
            scope = dict(scope, headers=[
                *((k, v) for k, v in scope.get("headers", [])
                  if k.lower() != b"x-forwarded-for"),
                (b"x-forwarded-for", address.encode("latin-1"))])
        await self.app(scope, receive, send)
