"""Observability of the mesh: OpenTelemetry set-up, propagation on every hop, span conventions.

    import tracing
    tracing.configure("helpdesk")       # once per process; reads OTEL_* and MESH_* settings

The rest of the code uses ``tracing.conventions`` for spans and ``tracing.propagation`` for hops.
"""

from __future__ import annotations

from tracing.setup import Tracing, configure, content_recording, span_store_path

__all__ = ["Tracing", "configure", "content_recording", "span_store_path"]
