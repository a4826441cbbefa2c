"""The HTTP API and web console. Routers stay thin; the logic lives in plain modules."""
