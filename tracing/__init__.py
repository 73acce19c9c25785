"""Observability of the mesh: OpenTelemetry set-up, propagation on every hop, span conventions.

    import tracing
    tracing.configure("helpdesk")       # once per process; reads OTEL_* and MESH_* settings

The rest of the code uses ``tracing.conventions`` for spans and ``tracing.propagation`` for hops.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracing.setup import Tracing, configure, content_recording, span_store_path

__all__ = ["Tracing", "configure", "content_recording", "span_store_path"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the OTel SDK is not needed by code that only propagates context.
    if name in __all__:
        return getattr(importlib.import_module("tracing.setup"), name)
    raise AttributeError(f"module 'tracing' has no attribute {name!r}")
