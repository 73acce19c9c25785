"""The SSRF guard: may this service fetch an outbound URL that someone else gave it?

Push-notification URLs and registered card/MCP URLs come from callers, so fetching them blindly
would let a caller make us reach the cloud metadata endpoint or an internal service. The guard
allows http/https only, resolves the host and refuses it when any address it resolves to is
link-local (169.254.169.254 and friends), multicast, unspecified or reserved, always; and, unless
private URLs are allowed, loopback, RFC 1918, CGNAT (100.64/10), IPv6 ULA and other non-global
addresses. IPv4-mapped, 6to4 and NAT64 IPv6 forms are judged by the IPv4 address they carry.

DNS rebinding (a name that resolves to a public address when checked and to a private one when
fetched) is closed for httpx clients built on ``guarded_transport``: their connections go to the
very address the guard checked at connect time, not to a second resolution.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpcore2
import httpx
import httpx2

from agents.settings import MeshSettings

__all__ = [
    "IPAddress",
    "UrlGuard",
    "UrlRefused",
    "address_problem",
    "allow_private_for",
    "guarded_transport",
    "guarded_transport2",
    "is_loopback_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_PRIVATE_SETTING = "MESH_ALLOW_PRIVATE_URLS"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """An outbound URL this service will not fetch; the message says why and how to allow it."""


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 transition form carries (mapped, 6to4, NAT64), else the address."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """What kind of address ``address`` is when it may not be fetched ("a loopback address"), else None."""
    address = _embedded_ipv4(address)
    if address.is_loopback:  # before "reserved": IPv6's ::/8 holds ::1
        return None if allow_private else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"  # cloud metadata lives here: never a legitimate agent
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address"
    if allow_private:
        return None
    if address in _CGNAT:
        return "a shared (CGNAT) address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback literals: a service bound there only talks to this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allow_private_for(settings: MeshSettings, *, push: bool = False) -> bool:
    """The private-URL policy: the setting when given, else allowed only for a service bound to loopback.

    A local mesh on 127.0.0.1 talks to itself over loopback; a service bound elsewhere is reachable
    from outside, so it is strict unless ``MESH_ALLOW_PRIVATE_URLS=true``. ``push`` honours the
    older ``MESH_PUSH_ALLOW_PRIVATE`` first.
    """
    if push and settings.push_allow_private is not None:
        return settings.push_allow_private
    if settings.allow_private_urls is not None:
        return settings.allow_private_urls
    return is_loopback_host(settings.host)


@dataclass(frozen=True, slots=True)
class UrlGuard:
    """Decides whether outbound URLs may be fetched; ``check`` raises UrlRefused, ``allows`` answers."""

    allow_private: bool
    resolve_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: MeshSettings, *, push: bool = False) -> UrlGuard:
        return cls(allow_private=allow_private_for(settings, push=push))

    async def check(self, url: str, *, unresolvable_ok: bool = False) -> list[str]:
        """The addresses ``url``'s host resolves to, all allowed; else UrlRefused naming the problem.

        ``unresolvable_ok``: a name that does not resolve now passes (with no addresses). For URLs kept
        for later (push configs): every delivery is checked again, and connects only where allowed.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UrlRefused(f"{url!r} is not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"{url!r} is not an http or https URL")
        if not parts.hostname:
            raise UrlRefused(f"{url!r} names no host")
        try:
            return await self.resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        except UrlRefused as exc:
            if unresolvable_ok and str(exc).startswith(_UNRESOLVED):
                return []
            raise UrlRefused(f"{url} {exc}") from None

    async def allows(self, url: str) -> bool:
        try:
            await self.check(url)
        except UrlRefused:
            return False
        return True

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, when all are allowed; else UrlRefused ("resolves to ...")."""
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), self.resolve_timeout
            )
        except (OSError, UnicodeError, TimeoutError) as exc:
            raise UrlRefused(f"{_UNRESOLVED} ({type(exc).__name__}: {exc})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            problem = address_problem(address, allow_private=self.allow_private)
            if problem is not None:
                hint = "" if self.allow_private or problem in _NEVER else f"; set {ALLOW_PRIVATE_SETTING}=true to allow"
                raise UrlRefused(f"resolves to {problem} {text}{hint}")
        if not addresses:
            raise UrlRefused(f"{_UNRESOLVED} (no addresses)")
        return addresses


_UNRESOLVED = "does not resolve"
_NEVER = frozenset({"an unspecified address", "a link-local address", "a multicast address", "a reserved address"})


class _GuardedBackend:
    """Connects only to addresses the guard allowed, resolved once here: no second, rebindable lookup.

    Duck-typed on httpcore's AsyncNetworkBackend so it serves httpcore (httpx) and httpcore2
    (httpx2, the MCP SDK's client) alike; ``connect_error`` is the library's ConnectError.
    """

    def __init__(self, guard: UrlGuard, inner: Any, connect_error: type[Exception]) -> None:
        self.guard, self.inner, self.connect_error = guard, inner, connect_error

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        try:
            addresses = await self.guard.resolve(host, port)
        except UrlRefused as exc:
            raise self.connect_error(f"{host} {exc}") from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except Exception as exc:  # the library's connect errors and timeouts: try the next address
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise self.connect_error("unix sockets are not reachable through the URL guard")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _guard_pool(transport: Any, guard: UrlGuard, connect_error: type[Exception]) -> None:
    # httpx/httpx2 have no public hook for the network backend, so the pool's is wrapped in place;
    # tests/test_url_guard.py fails if an upgrade moves it.
    pool = transport._pool  # noqa: SLF001
    pool._network_backend = _GuardedBackend(guard, pool._network_backend, connect_error)  # noqa: SLF001


def guarded_transport(guard: UrlGuard, **options: Any) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every new connection goes through ``guard`` (refusals: httpx.ConnectError).

    A proxy from the environment is a separate transport and bypasses this one: proxied
    deployments rely on ``check`` alone (and on the proxy's own rules).
    """
    transport = httpx.AsyncHTTPTransport(**options)
    _guard_pool(transport, guard, httpcore.ConnectError)
    return transport


def guarded_transport2(guard: UrlGuard, **options: Any) -> httpx2.AsyncHTTPTransport:
    """``guarded_transport`` for httpx2, the client library the MCP SDK takes (``http_client=``)."""
    transport = httpx2.AsyncHTTPTransport(**options)
    _guard_pool(transport, guard, httpcore2.ConnectError)
    return transport
