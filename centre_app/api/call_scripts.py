"""Call scripts (`monitoring_centre/call_scripts.py`): one per rule, what an operator says and
does. Operators and administrators read them; administrators edit them (audited before and after)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from centre_app.api.deps import Admin, Db, DocumentedRoute, errors, invalid, require_roles
from monitoring_centre import call_scripts
from monitoring_centre.roles import Role
from monitoring_centre.storage import User

router = APIRouter(prefix="/api/v1/call-scripts", tags=["call scripts"], route_class=DocumentedRoute)
OperatorOrAdmin = Annotated[User, Depends(require_roles(Role.OPERATOR, Role.ADMIN))]


class CallScriptOut(BaseModel):
    rule: str
    """A `detection.rules.RuleId` value."""
    title: str
    steps: list[str]
    updated_by: str
    """A username, or "seed" for the default."""


class CallScriptIn(BaseModel):
    title: str = Field(max_length=200)
    steps: list[str] = Field(max_length=call_scripts.MAX_STEPS)


def _out(script: call_scripts.Script) -> CallScriptOut:
    return CallScriptOut(rule=script.rule, title=script.title, steps=list(script.steps), updated_by=script.updated_by)


@router.get("")
def list_scripts(user: OperatorOrAdmin, session: Db) -> list[CallScriptOut]:
    """Every rule's script, in the rule catalogue's order (no person's data: not audited)."""
    scripts = call_scripts.all_scripts(session)
    session.commit()
    return [_out(script) for script in scripts]


@router.put("/{rule}", responses=errors(404))
def put_script(rule: str, body: CallScriptIn, user: Admin, session: Db) -> CallScriptOut:
    """Replace a rule's script. 404 for a rule not in the catalogue; 422 for an empty title, no
    steps or an empty step. Audited "edit_call_script" with the script before and after."""
    try:
        script = call_scripts.set_script(session, rule, body.title, body.steps, user.username)
    except call_scripts.UnknownRule as unknown:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(unknown)) from None
    except call_scripts.BadScript as bad:
        raise invalid(("body", "steps"), str(bad)) from None
    session.commit()
    return _out(script)
