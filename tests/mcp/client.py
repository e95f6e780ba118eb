"""An MCP client built on the official `mcp` SDK (PyPI), driven by
tests/tests/mcp.rs: connects to a Junction host's /mcp over Streamable
HTTP with a bearer token, lists the tools, calls one, and prints each
answer as one JSON line, so the Rust test judges what a real agent sees.

Usage: client.py URL TOKEN [TOOL ARGUMENTS_JSON]
With JUNCTION_END_USER set, every request names that end user in the
`Junction-End-User` header (how an app's key acts for one of its users).
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


async def main(url: str, token: str, tool: str | None, arguments: dict) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    end_user = os.environ.get("JUNCTION_END_USER")
    if end_user:
        headers["Junction-End-User"] = end_user
    http = create_mcp_http_client(headers=headers)
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                info = await session.initialize()
                print(json.dumps({"server": info.server_info.name}))
                listed = await session.list_tools()
                print(json.dumps({"tools": [
                    {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                    for t in listed.tools
                ]}))
                if tool is not None:
                    try:
                        result = await session.call_tool(tool, arguments)
                        print(json.dumps({
                            "is_error": bool(result.is_error),
                            "structured": result.structured_content,
                        }))
                    except Exception as err:  # a protocol error, as the agent gets it
                        print(json.dumps({"protocol_error": str(err)}))


if __name__ == "__main__":
    url, token = sys.argv[1], sys.argv[2]
    tool = sys.argv[3] if len(sys.argv) > 3 else None
    arguments = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    asyncio.run(main(url, token, tool, arguments))
