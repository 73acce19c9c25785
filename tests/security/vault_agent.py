"""An agent whose skills take secrets, for the no-leak tests."""

from agents import Agent, ToolError

vault = Agent("vault", "Opens customer vaults with their passwords", version="1.0.0")


@vault.skill(tags=["vault"])
def unlock(user: str, password: str, pin: int = 0) -> str:
    """Unlock a user's vault."""
    if password.startswith("crash"):
        raise ValueError(f"cannot derive a key from {password!r} for {user}")  # a careless library message
    if password != "open sesame":
        raise ToolError(f"wrong password {password} for {user}")  # a careless skill message
    return f"vault of {user} unlocked"
