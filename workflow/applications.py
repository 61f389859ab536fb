"""The application for a company opening (the body of ``POST /cases``) and its validation.

Every rule a bad application can break is checked here, once, for the REST API, the pages and the
CLI alike; every bad field is reported together.
"""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from .identifiers import (id_number_error, mask_id_number, mobile_error, money_error, normalise_id_number,
                          parse_money)
from .validation import StrictBoolean

COMPANY_KINDS = ("llc", "sole_proprietorship", "partnership", "branch")
CHANNELS = ("window", "online", "mail")


def _check(error_of):
    def validator(value):
        message = error_of(value)
        if message:
            raise ma.ValidationError(message)
    return validator


class Money(fields.String):
    """A decimal amount written as a string, normalised to two places ("1000000.00")."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        message = money_error(text)
        if message:
            raise ma.ValidationError(message)
        return f"{parse_money(text):.2f}"


class IdNumber(fields.String):
    """A resident ID number (GB 11643), normalised to upper case."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = normalise_id_number(super()._deserialize(value, attr, data, **kwargs))
        message = id_number_error(text)
        if message:
            raise ma.ValidationError(message)
        return text


class _Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class CompanySchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(2, 100))
    kind = fields.String(required=True, validate=validate.OneOf(COMPANY_KINDS))
    registered_capital = Money(required=True)
    address = fields.String(required=True, validate=validate.Length(1, 200))
    business_scope = fields.String(required=True, validate=validate.Length(1, 2000))


class PersonSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(1, 64))
    id_number = IdNumber(required=True)
    phone = fields.String(required=True, validate=_check(mobile_error))


class ShareholderSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    id_number = IdNumber(required=True)
    contribution = Money(required=True)


class ApplicationSchema(_Strict):
    """What the applicant asks for; ``wants`` is checked against the process definition later."""

    company = fields.Nested(CompanySchema, required=True)
    legal_representative = fields.Nested(PersonSchema, required=True)
    shareholders = fields.List(fields.Nested(ShareholderSchema), required=True,
                               validate=validate.Length(1, 50))
    wants = fields.Dict(keys=fields.String(), values=StrictBoolean(), load_default=dict)
    channel = fields.String(load_default="window", validate=validate.OneOf(CHANNELS))

    @ma.validates_schema(skip_on_field_errors=False)
    def _contributions_add_up(self, data, **_):
        # Runs even when other fields are bad, so that every problem is named at once; it needs a
        # valid capital and every contribution (fields that failed are absent from ``data``).
        capital = (data.get("company") or {}).get("registered_capital")
        shareholders = data.get("shareholders") or []
        if capital is None or not shareholders or any("contribution" not in s for s in shareholders):
            return
        total = sum(parse_money(s["contribution"]) for s in shareholders)
        if total != parse_money(capital):
            raise ma.ValidationError(
                f"contributions add up to {total:.2f}, not the registered capital {parse_money(capital):.2f}",
                "shareholders",
            )


def masked(application: dict) -> dict:
    """A copy with ID numbers and phone numbers masked, for every response but the creating one."""
    def person(p: dict) -> dict:
        out = dict(p, id_number=mask_id_number(p["id_number"]))
        if "phone" in out:
            out["phone"] = out["phone"][:3] + "****" + out["phone"][-4:]
        return out

    return dict(
        application,
        legal_representative=person(application["legal_representative"]),
        shareholders=[person(s) for s in application["shareholders"]],
    )
