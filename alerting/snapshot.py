"""The escalation chain as it was when an alert opened: its steps, and each step's responders
with their contact points, resolved at that moment (`escalation.chain_for`).

It is stored in `Escalation.steps` (a JSON column) and is read and written only through
`dump` and `load` here, the way Grafana OnCall keeps an alert group's escalation snapshot
behind one serializer. The stored JSON is a list with one object per step:

    [{"audience": "keyholders", "wait_s": 300,
      "recipients": [{"responder_id": 2, "name": "Kim", "role": "keyholder",
                      "addresses": ["mailto:kim@example.org"]}]}, ...]

That shape is the contract with every database already written: change it only with a
migration.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from alerting.policy import Audience


class Recipient(BaseModel):
    """One responder a step reaches, with their contact points in their own order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    responder_id: int
    name: str
    role: str
    """The responder's role (`Responder.role`): keyholder, operator, nurse, emergency_services."""
    addresses: tuple[str, ...]
    """Apprise URLs or `mailto:` addresses, first choice first."""
    phones: tuple[str, ...] = ()
    """`tel:` contact points, first choice first: numbers for the operators to phone, never sent to. A
    step whose recipients have only these becomes a task on the operators' alarm queue ("phone ...").
    Empty in chains snapshotted before they were kept."""


class ChainStep(BaseModel):
    """One step of a snapshotted chain: tell these recipients, then wait `wait_s` seconds
    for somebody to act before the next step runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audience: Audience
    wait_s: int = Field(ge=0)
    recipients: tuple[Recipient, ...]
    """Empty for a keyholder step when the person has nominated nobody; a recipient may have no
    addresses. A step that reaches nobody says so in the notification log."""

    def reaches_anyone(self) -> bool:
        """Whether any recipient of this step has a contact point a channel sends to."""
        return any(recipient.addresses for recipient in self.recipients)

    def to_phone(self) -> tuple[str, ...]:
        """"Name (number, number)" for each recipient with a number for the operators to phone."""
        return tuple(f"{recipient.name} ({', '.join(phone.partition(':')[2] for phone in recipient.phones)})"
                     for recipient in self.recipients if recipient.phones)


class EscalationChain(BaseModel):
    """An alert's chain: its steps in the order they run, one cycle of them."""

    model_config = ConfigDict(frozen=True)

    steps: tuple[ChainStep, ...] = ()


_STORED = TypeAdapter(list[ChainStep])


def dump(chain: EscalationChain) -> list[dict[str, Any]]:
    """The chain as stored in `Escalation.steps`: plain JSON values (enums as their strings); a recipient's
    `phones` only when it has some, so a chain without numbers keeps the shape stored before them."""
    return [step.model_dump(mode="json", exclude_defaults=True) for step in chain.steps]  # no empty `phones`


def load(raw: object) -> EscalationChain:
    """The chain stored in `Escalation.steps`. Raises `pydantic.ValidationError` if it is not
    in the stored shape."""
    return EscalationChain(steps=tuple(_STORED.validate_python(raw)))
