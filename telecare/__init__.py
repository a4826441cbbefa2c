"""The `telecare` command: the demo, and entry points for each part of the system."""
