"""A small customer-help agent: the example `make demo` serves (A2A on HTTP, MCP on HTTP and stdio)."""

from pydantic import BaseModel

from agents import Agent, Provider, ToolContext

agent = Agent(
    "helpdesk",
    "Answers opening-hours questions and books call-backs for customers",
    version="1.0.0",
    provider=Provider("agent-mesh examples", "https://example.com/agent-mesh"),
)

HOURS = {"shop": "Mon-Sat 09:00-18:00", "support": "every day 08:00-20:00", "billing": "Mon-Fri 09:00-17:00"}


class Callback(BaseModel):
    customer: str
    phone: str
    slot: str
    reference: str


@agent.skill(tags=["hours", "opening"], examples=["When is support open?", "opening hours of the shop"])
def opening_hours(department: str) -> str:
    """Tell the opening hours of a department (shop, support or billing)."""
    words = department.lower().split()
    name = next((d for d in HOURS if d in words or d in department.lower()), None)
    if name is None:
        return f"I know the hours of: {', '.join(HOURS)}."
    return f"The {name} is open {HOURS[name]}."


@agent.skill(tags=["callback", "booking"], examples=["Please call me back", "book a call-back"])
async def book_callback(customer: str, ctx: ToolContext) -> Callback:
    """Book a call-back for a customer; asks for the phone number and a time slot."""
    phone = await ctx.ask(f"Which phone number should we call, {customer}?")
    slot = await ctx.ask("Morning or afternoon?")
    await ctx.progress("booking the call-back")
    return Callback(customer=customer, phone=phone, slot=slot, reference=f"CB-{abs(hash((customer, phone))) % 10000:04d}")
