"""The detection engine: pure, deterministic rules from messages to alert decisions.

No I/O here. `alerts.py` turns the decisions into stored alerts."""
