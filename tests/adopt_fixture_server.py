"""A small MCP server on stdio for the `mesh adopt` tests: progress, a question mid-call, an image, a crash."""

from __future__ import annotations

import os

from pydantic import BaseModel

from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Image

# One red pixel (PNG): small, and its bytes are easy to compare
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201b2f7a4a80000000049454e44ae426082"
)

server = MCPServer("fixture-tools", version="1.2.3", instructions="Orders stationery and draws pixels, for tests.")


class Quantity(BaseModel):
    count: int


@server.tool(title="Order stationery")
async def order(item: str, ctx: Context) -> str:
    """Order an item: asks how many, reporting progress on the way."""
    await ctx.report_progress(0.5, 1.0, f"checking the stock of {item}")
    answer = await ctx.elicit(f"How many {item}?", Quantity)
    if answer.action != "accept":
        return f"no order ({answer.action})"
    return f"ordered {answer.data.count} {item}"


@server.tool()
def pixel() -> Image:
    """One red pixel as a PNG image."""
    return Image(data=PIXEL, format="png")


@server.tool()
def pid() -> int:
    """The server's process id (a restarted server has a new one)."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    os._exit(3)


if __name__ == "__main__":
    server.run()
