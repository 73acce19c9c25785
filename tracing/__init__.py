"""OpenTelemetry setup, propagation and span conventions (built in the tracing issue)."""
