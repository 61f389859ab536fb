"""Marshmallow schemas for a step's output fields, built from the definition's declarations."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ..identifiers import uscc_error
from ..validation import StrictBoolean


def _uscc(value: str) -> None:
    message = uscc_error(value)
    if message:
        raise ma.ValidationError(message)


def _string(spec: dict) -> fields.Field:
    checks = [validate.Length(min=1, max=spec.get("max_length") or 200)]
    if spec.get("pattern"):
        checks.append(validate.Regexp(spec["pattern"], error="has the wrong format"))
    return fields.String(validate=checks)


FIELD_TYPES = {
    "string": _string,
    "uscc": lambda spec: fields.String(validate=_uscc),
    "bool": lambda spec: StrictBoolean(),
    "int": lambda spec: fields.Integer(strict=True, validate=validate.Range(min=spec.get("min"), max=spec.get("max"))),
    "choice": lambda spec: fields.String(validate=validate.OneOf(spec["choices"])),
    "list": lambda spec: fields.List(
        fields.String(validate=validate.OneOf(spec["choices"])),
        validate=validate.Length(min=spec.get("min_items") or 0),
    ),
}


def outputs_schema(step_key: str, outputs: dict) -> ma.Schema:
    """Return a schema instance that validates the completion body of one step."""
    declared = {}
    for name, spec in outputs.items():
        field = FIELD_TYPES[spec["type"]](spec)
        field.required = spec.get("required", True)
        if not field.required:
            field.allow_none = True
        declared[name] = field
    schema_class = ma.Schema.from_dict(declared, name=f"{step_key.title().replace('_', '')}Outputs")
    return schema_class(unknown=ma.RAISE)
