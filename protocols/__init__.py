"""Wire formats: A2A 1.0 (server, executor, cards, client) and the MCP glue.

This is the only package that imports the protocol SDKs' wire types.
"""

import os

# a2a-sdk wraps its internals in ~35 spans per request and costs ~30 % of its CPU doing so, even
# with no tracer installed; it reads this switch once, at import. The mesh emits its own
# convention spans instead. Set the variable to "true" to get the SDK's spans back.
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
