"""Typed rejections. Each names the offending field and carries a short `reason` code,
which the centre counts per reason in its dead-letter table and in /metrics."""


class ProtocolError(ValueError):
    reason = "malformed"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class MalformedMessage(ProtocolError):
    """Not JSON, not an object, a field of the wrong type or an unknown field."""

    reason = "malformed"


class UnknownVersion(ProtocolError):
    reason = "unknown_version"


class MissingField(ProtocolError):
    reason = "missing_field"


class ImpossibleValue(ProtocolError):
    """A value no device could measure (SpO2 of 140%), or a unit that does not fit."""

    reason = "impossible_value"
