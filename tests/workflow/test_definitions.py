"""Process definitions are data: validated on load, versioned, kept by the cases that use them."""
import copy

import pytest

from workflow import operations as ops
from workflow.definitions import packaged, parse, store
from workflow.errors import DefinitionError


def test_the_packaged_definition_is_the_contracts_process():
    definition = parse(packaged())
    assert [(s.key, s.department, s.needs, s.target_minutes) for s in definition.steps] == [
        ("registration", "market_regulation", (), 90),
        ("seal", "public_security", ("registration",), 60),
        ("tax", "taxation", ("registration",), 60),
        ("bank", "bank", ("registration",), 60),
        ("invoice", "taxation", ("tax",), 60),
    ]
    assert set(definition.optional_steps) == {"seal", "invoice", "bank"}
    assert definition.case_target_minutes == 210


def _broken(mutate):
    document = copy.deepcopy(packaged())
    mutate(document)
    return document


def _step(document, key):
    return next(s for s in document["steps"] if s["key"] == key)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: _step(d, "registration").update(needs=["tax"]), "cycle"),
    (lambda d: _step(d, "seal").update(department="fire_brigade"), "unknown department fire_brigade"),
    (lambda d: _step(d, "bank").update(needs=["notary"]), "needs notary, which is not defined"),
    (lambda d: _step(d, "tax").update(target_minutes=0), "must be positive"),
    (lambda d: d.update(case_target_minutes=-5), "must be positive"),
    (lambda d: d["steps"].append(copy.deepcopy(_step(d, "tax"))), "defined twice"),
    (lambda d: _step(d, "tax").update(needs=["seal"]), "cannot need optional step seal"),
    (lambda d: d.pop("steps"), "steps"),
])
def test_malformed_definitions_are_refused_with_the_reason(mutate, message):
    with pytest.raises(DefinitionError, match=message):
        parse(_broken(mutate))


def test_a_hall_adds_a_step_without_touching_the_engine(session, factory):
    """Publish v2 with social security; cases accepted from then on carry the new step."""
    old_case = factory.case("in_progress")
    document = copy.deepcopy(packaged())
    document["version"] = 2
    document["departments"]["social_security"] = {"zh": "人社", "en": "Social security"}
    document["steps"].append({
        "key": "social_security", "title": {"zh": "社保登记", "en": "Social security"},
        "department": "social_security", "needs": ["registration"], "optional": False, "target_minutes": 45,
        "outputs": {"insurance_no": {"type": "string"}},
    })
    store.publish(session, document, published_by="admin")
    session.commit()

    new_case = factory.case("in_progress")
    assert new_case.definition_version == 2
    assert "social_security" in [s.key for s in new_case.steps]
    assert old_case.definition_version == 1
    assert "social_security" not in [s.key for s in old_case.steps]

    factory.finish_steps(new_case, "registration")
    assert new_case.step("social_security").state.value == "ready"
    clerk = factory.actor("clerk", "social_security")
    ops.claim_step(session, new_case, "social_security", clerk)
    ops.complete_step(session, new_case, "social_security", clerk, {"insurance_no": "SB-1"})
    assert new_case.step("social_security").outputs == {"insurance_no": "SB-1"}


def test_a_case_submitted_before_a_new_version_runs_under_the_one_it_is_accepted_under(session, factory):
    case = factory.case("submitted", wants={"seal": False, "invoice": True, "bank": True})
    document = copy.deepcopy(packaged())
    document["version"] = 2
    _step(document, "tax")["target_minutes"] = 45
    store.publish(session, document, published_by="admin")
    ops.accept_case(session, case, factory.window)
    assert case.definition_version == 2
    assert {s.key: s.state.value for s in case.steps} == {
        "registration": "ready", "seal": "skipped", "tax": "waiting", "bank": "waiting", "invoice": "waiting"}


def test_publishing_an_older_or_same_version_is_refused(session):
    store.current(session)
    with pytest.raises(DefinitionError, match="not newer"):
        store.publish(session, packaged(), published_by="admin")
