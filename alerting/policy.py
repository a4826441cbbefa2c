"""Escalation chains: who is told about an alert, in what order, and how long each gets.

A chain is a list of steps, each "tell these responders, then wait this long for someone
to act". It runs until an operator acknowledges the alert or a responder accepts it, and
then stops. The defaults follow the domain brief ("Monitoring-centre practice", from the
TSA Quality Standards Framework and council careline manuals):

- 97.5–98.5% of alarm calls are answered within 60 s and 99% within 180 s: the operators
  are told at once, told again at 60 s, and the chain leaves the centre at 180 s;
- a keyholder-only service calls the nominated contacts in order, then the emergency
  services; other services cycle the responder list twice;
- supervision (battery low, a device not heard from) goes to the operators once;
  restorals are logged, never sent;
- the alarm rules (`detection.rules.ALARMS`: a help press, a pull cord, a fall) always
  follow the alarm chain of the person's service, whatever the alert's priority says and
  whatever `RULE_POLICIES` holds: `emergency` (the operators first) or, for a keyholder-only
  service, `keyholder_only`, which tells the operators until someone acknowledges once its
  cycles are done (`reaches_operators`). Checked when this module loads.

The chain is snapshotted onto the alert when it opens (see `escalation.py`), so changing a
policy or a contact never changes an escalation already running (Grafana OnCall).
"""

from dataclasses import dataclass
from enum import StrEnum

from detection.rules import ALARMS, CLINICAL_REVIEW, RuleId
from telecare_protocol import Priority


class Audience(StrEnum):
    """Who a step tells. `keyholders` are the person's own nominated contacts, one step each,
    in the person's order; the others are every active responder of that role."""

    OPERATORS = "operators"
    KEYHOLDERS = "keyholders"
    NURSES = "nurses"
    EMERGENCY_SERVICES = "emergency_services"


AUDIENCES = tuple(Audience)

ROLE_OF_AUDIENCE = {Audience.OPERATORS: "operator", Audience.NURSES: "nurse",
                    Audience.EMERGENCY_SERVICES: "emergency_services"}
"""The responder role (`Responder.role`) whose active members an audience reaches; keyholders are
chosen per person instead."""


@dataclass(frozen=True)
class Step:
    audience: Audience
    wait_s: int
    """How long this step's responders have to act before the next step runs."""


@dataclass(frozen=True)
class Policy:
    name: str
    steps: tuple[Step, ...]
    cycles: int
    """How many times the whole chain runs before it is exhausted."""
    source: str
    until_acknowledged: bool = True
    """After the last cycle, keep telling the operators until someone acknowledges."""


EMERGENCY = Policy(
    "emergency",
    (Step(Audience.OPERATORS, 60), Step(Audience.OPERATORS, 120), Step(Audience.KEYHOLDERS, 300),
     Step(Audience.EMERGENCY_SERVICES, 600)),
    cycles=2,
    source="TSA QSF call answering (60 s / 180 s); responder list cycled twice",
)
KEYHOLDER_ONLY = Policy(
    "keyholder_only",
    (Step(Audience.KEYHOLDERS, 300), Step(Audience.EMERGENCY_SERVICES, 600)),
    cycles=2,
    source="keyholder-only service: nominated contacts in order, then the emergency services",
)
LINK_LOST = Policy(
    "link_lost",
    (Step(Audience.OPERATORS, 15 * 60), Step(Audience.OPERATORS, 15 * 60), Step(Audience.KEYHOLDERS, 3600)),
    cycles=1,
    source="a hub that stops reporting: stale data warns at 15 min and is urgent at 30 (Nightscout, the open-source "
           "diabetes monitor); "
           "then the family is asked to check, since the person's alarms cannot reach the centre",
)
SUPERVISION = Policy("supervision", (Step(Audience.OPERATORS, 0),), cycles=1,
                     source="supervision and low battery: priority 4, operators only", until_acknowledged=False)
LOGGED_ONLY = Policy("logged_only", (), cycles=0, source="restorals: priority 5, logged, never sent",
                     until_acknowledged=False)
CLINICAL_URGENT = Policy(
    "clinical_urgent",
    (Step(Audience.NURSES, 0), Step(Audience.OPERATORS, 60 * 60)),
    cycles=1,
    source="NHS oximetry @home (SpO2 <=92%: act now) and NEWS2 (a single parameter scoring 3: urgent review "
           "within 1 hour): the community nurses and the operators are told at once; the operators can call "
           "the person and the emergency services; reminded until acknowledged",
)
NURSE_REVIEW = Policy(
    "nurse_review",
    (Step(Audience.NURSES, 0),),
    cycles=1,
    source="trends and missed measurements are for clinical review, not an emergency (COPD telemonitoring: "
           "trend alerts precede admissions by days); the community nurses, once",
    until_acknowledged=False,
)
POLICIES = {policy.name: policy for policy in (EMERGENCY, KEYHOLDER_ONLY, LINK_LOST, SUPERVISION, LOGGED_ONLY,
                                               CLINICAL_URGENT, NURSE_REVIEW)}
RULE_POLICIES: dict[str, Policy] = {
    RuleId.HUB_OFFLINE: LINK_LOST,
    RuleId.SPO2_LOW: CLINICAL_URGENT,
    RuleId.PULSE_HIGH: CLINICAL_URGENT,
    RuleId.PULSE_LOW: CLINICAL_URGENT,
    **dict.fromkeys(CLINICAL_REVIEW, NURSE_REVIEW),  # the nurses' review tasks (detection.rules.CLINICAL_REVIEW)
}
"""Rules whose chain is not decided by priority alone: telehealth readings go to the
community nurses, not only to the alarm operators."""

ACKNOWLEDGED_REMINDER_S = 30 * 60
"""An acknowledged alert that is neither in progress nor resolved after this long is
brought back to the operators, and again every interval (Grafana OnCall #1792: the
forgotten acknowledgement). 30 min leaves time inside the TSA's 45 min mobile response."""


def reaches_operators(policy: Policy) -> bool:
    """Whether the chain ever tells the operators: a step for them, or telling them until
    acknowledged once its cycles are done (`escalation.py`); and it has steps to run at all."""
    return bool(policy.steps) and policy.cycles > 0 and (
        policy.until_acknowledged or any(step.audience == Audience.OPERATORS for step in policy.steps))


def alarm_policy(service: str) -> Policy:
    """The chain of a help press, a pull cord or a fall for a person on this service."""
    return KEYHOLDER_ONLY if service == "keyholder_only" else EMERGENCY


def policy_for(priority: int, service: str, rule: str = "") -> Policy:
    """The chain for an alert of this rule and priority, for a person on this service.

    An alarm rule (`ALARMS`) always gets `alarm_policy(service)`, even with a priority other
    than 1 (an alert stored before the safety floors existed): never `logged_only` or
    `supervision`."""
    if rule in ALARMS:
        return alarm_policy(service)
    if rule in RULE_POLICIES:
        return RULE_POLICIES[rule]
    if priority <= Priority.HIGH:
        return KEYHOLDER_ONLY if service == "keyholder_only" else EMERGENCY
    if priority <= Priority.SUPERVISION:
        return SUPERVISION
    return LOGGED_ONLY


if any(not reaches_operators(alarm_policy(service)) or not alarm_policy(service).until_acknowledged
       for service in ("monitored", "keyholder_only")):  # a broken alarm chain must not load
    raise RuntimeError("an alarm's escalation chain must reach the operators and run until acknowledged")
