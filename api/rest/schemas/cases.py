"""How cases, steps and events look on the wire (contract section 4)."""
import marshmallow as ma
from marshmallow import fields, validate

from workflow.applications import ApplicationSchema, masked
from workflow.machines.case import CaseState

from .common import HallDateTime


class SlaSchema(ma.Schema):
    """A service-level clock: working minutes used of the target, the deadline, the status."""

    target_minutes = fields.Integer()
    used_minutes = fields.Float()
    deadline = HallDateTime(allow_none=True, metadata={"description": "null while the case is suspended"})
    status = fields.String(metadata={"description": "on_track, warning (≥ 75 % used) or breached (> 100 %)"})
    paused = fields.Boolean(metadata={"description": "the clock stands still (case suspended)"})


class StepSchema(ma.Schema):
    step = fields.String(attribute="key")
    state = fields.Function(lambda s: s["state"].value)
    department = fields.String()
    needs = fields.List(fields.String())
    assignee = fields.Function(lambda s: s["assignee"].username if s["assignee"] else None,
                               metadata={"description": "Username of the clerk holding the step"})
    ready_at = HallDateTime(allow_none=True)
    claimed_at = HallDateTime(allow_none=True)
    done_at = HallDateTime(allow_none=True)
    outputs = fields.Dict(allow_none=True)
    refusal_reason = fields.String(allow_none=True)
    sla = fields.Nested(SlaSchema, allow_none=True)

    @ma.pre_dump
    def _project(self, pair, **_):
        step, sla = pair
        return {"key": step.key, "state": step.state, "department": step.department, "needs": step.needs,
                "assignee": step.assignee, "ready_at": step.ready_at, "claimed_at": step.claimed_at,
                "done_at": step.done_at, "outputs": step.outputs, "refusal_reason": step.refusal_reason,
                "sla": sla}


class CompanyOut(ma.Schema):
    name = fields.String()
    kind = fields.String()
    registered_capital = fields.String()
    address = fields.String()
    business_scope = fields.String()


class PersonOut(ma.Schema):
    name = fields.String()
    id_number = fields.String(metadata={"description": "Masked except in the response that created the case"})
    phone = fields.String()


class ShareholderOut(ma.Schema):
    name = fields.String()
    id_number = fields.String()
    contribution = fields.String()


class DeliveryOut(ma.Schema):
    method = fields.String()
    tracking_no = fields.String(allow_none=True)


class CaseSchema(ma.Schema):
    """A case as staff see it; ID and phone numbers masked."""

    reveal_personal_data = False

    case_no = fields.String()
    tracking_code = fields.String()
    state = fields.String()
    version = fields.Integer()
    definition = fields.Dict()
    company = fields.Nested(CompanyOut)
    legal_representative = fields.Nested(PersonOut)
    shareholders = fields.List(fields.Nested(ShareholderOut))
    wants = fields.Dict(keys=fields.String(), values=fields.Boolean())
    channel = fields.String()
    missing_materials = fields.List(fields.String())
    delivery = fields.Nested(DeliveryOut, allow_none=True)
    closing_reason = fields.String(allow_none=True)
    created_at = HallDateTime()
    accepted_at = HallDateTime(allow_none=True)
    ready_at = HallDateTime(allow_none=True)
    delivered_at = HallDateTime(allow_none=True)
    closed_at = HallDateTime(allow_none=True)
    calendar_confirmed = fields.Boolean(metadata={"description": "false when a day involved has no confirmed "
                                                                 "holiday data (counted Monday to Friday)"})
    sla = fields.Nested(SlaSchema, allow_none=True, metadata={"description": "null until accepted"})
    steps = fields.List(fields.Nested(StepSchema))

    @ma.pre_dump
    def _project(self, timed, **_):
        case, timing = timed.case, timed.timing
        application = case.application if self.reveal_personal_data else masked(case.application)
        return {
            "case_no": case.case_no,
            "tracking_code": case.tracking_code,
            "state": case.state.value,
            "version": case.version,
            "definition": {"name": case.definition_name, "version": case.definition_version},
            "company": application["company"],
            "legal_representative": application["legal_representative"],
            "shareholders": application["shareholders"],
            "wants": application.get("wants", {}),
            "channel": case.channel,
            "missing_materials": case.missing_materials or [],
            "delivery": case.delivery,
            "closing_reason": case.closing_reason,
            "created_at": case.created_at,
            "accepted_at": case.accepted_at,
            "ready_at": case.ready_at,
            "delivered_at": case.delivered_at,
            "closed_at": case.closed_at,
            "calendar_confirmed": timing.calendar_confirmed,
            "sla": timing.case,
            "steps": [(step, timing.steps.get(step.key)) for step in case.steps],
        }


class CreatedCaseSchema(CaseSchema):
    """The case in the response that created it: the one place personal data shows unmasked."""

    reveal_personal_data = True


class CaseListArgs(ma.Schema):
    state = fields.String(validate=validate.OneOf([s.value for s in CaseState]))
    step = fields.String(metadata={"description": "Cases where this step is open (ready or in progress)"})
    department = fields.String(metadata={"description": "Cases with an open step of this department"})
    sla_status = fields.String(validate=validate.OneOf(["on_track", "warning", "breached"]),
                               metadata={"description": "The case's status as last recorded by the timer worker"})
    q = fields.String(validate=validate.Length(1, 100),
                      metadata={"description": "Case number prefix or part of the company name"})
    # Bounded so that the offset fits the databases' 64-bit integers (a larger page was a 500).
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class AcceptSchema(ma.Schema):
    missing_materials = fields.List(fields.String(validate=validate.Length(1, 200)), load_default=list,
                                    metadata={"description": "容缺: materials the applicant will supply later"})


class DeliverSchema(ma.Schema):
    method = fields.String(required=True, validate=validate.OneOf(["counter", "mail"]))
    tracking_no = fields.String(allow_none=True, load_default=None,
                                metadata={"description": "Required when mailed"})


class ReassignSchema(ma.Schema):
    assignee = fields.String(required=True, validate=validate.Length(1, 64),
                             metadata={"description": "Username of an active clerk of the step's department"})


class ApplicationBody(ApplicationSchema):
    """The application as the OpenAPI document shows it; passed through unparsed to the engine.

    ``submit_case`` validates it, together with what depends on the published process (the optional
    steps in ``wants``), so that one 422 names every bad field.
    """

    def load(self, data, **_kwargs):
        return data


class OutputsSchema(ma.Schema):
    """The step's output fields; which ones depends on the step (see the process definition)."""

    class Meta:
        unknown = ma.INCLUDE


class EventSchema(ma.Schema):
    id = fields.Integer()
    seq = fields.Integer()
    at = HallDateTime()
    actor = fields.String()
    role = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    action = fields.String()
    step = fields.String(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    payload = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()
