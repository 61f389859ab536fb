"""Process definitions: the steps of a case as versioned data, validated on load.

A definition names its steps, each step's owning department, the steps it needs (a DAG), its
target in working minutes and the output fields its completion records. A hall adds a step or
changes a target by publishing a new version; a case keeps the version it was accepted under.
"""
from __future__ import annotations

import graphlib
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import marshmallow as ma
from marshmallow import fields, validate

from ..errors import DefinitionError
from .outputs import FIELD_TYPES, outputs_schema

DEFAULT_NAME = "company_opening"
KEY = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$", error="must be lower_snake_case, 2 to 40 characters")


class _Title(ma.Schema):
    zh = fields.String(required=True, validate=validate.Length(1, 64))
    en = fields.String(required=True, validate=validate.Length(1, 64))


class _Output(ma.Schema):
    type = fields.String(required=True, validate=validate.OneOf(sorted(FIELD_TYPES)))
    required = fields.Boolean(load_default=True)
    choices = fields.List(fields.String(), load_default=None)
    min = fields.Integer(load_default=None)
    max = fields.Integer(load_default=None)
    min_items = fields.Integer(load_default=None)
    max_length = fields.Integer(load_default=None)
    pattern = fields.String(load_default=None)

    @ma.validates_schema
    def _choices_where_needed(self, data, **_):
        if data["type"] in ("choice", "list") and not data.get("choices"):
            raise ma.ValidationError("choice and list outputs need choices", "choices")


class _Step(ma.Schema):
    key = fields.String(required=True, validate=KEY)
    title = fields.Nested(_Title, required=True)
    department = fields.String(required=True, validate=KEY)
    needs = fields.List(fields.String(), load_default=list)
    optional = fields.Boolean(load_default=False)
    target_minutes = fields.Integer(required=True, validate=validate.Range(min=1, error="must be positive"))
    outputs = fields.Dict(keys=fields.String(validate=KEY), values=fields.Nested(_Output), load_default=dict)


class DefinitionSchema(ma.Schema):
    """The shape of a definition document (JSON)."""

    name = fields.String(required=True, validate=KEY)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    title = fields.Nested(_Title, required=True)
    case_target_minutes = fields.Integer(required=True, validate=validate.Range(min=1, error="must be positive"))
    departments = fields.Dict(keys=fields.String(validate=KEY), values=fields.Nested(_Title), required=True)
    steps = fields.List(fields.Nested(_Step), required=True, validate=validate.Length(min=1))


@dataclass(frozen=True)
class StepDef:
    key: str
    title: dict
    department: str
    needs: tuple[str, ...]
    optional: bool
    target_minutes: int
    outputs: dict

    @cached_property
    def outputs_schema(self) -> ma.Schema:
        """The marshmallow schema that validates this step's completion fields."""
        return outputs_schema(self.key, self.outputs)


@dataclass(frozen=True)
class Definition:
    name: str
    version: int
    title: dict
    case_target_minutes: int
    departments: dict
    steps: tuple[StepDef, ...]  # in a topological order: every step after the ones it needs
    document: dict

    def step(self, key: str) -> StepDef:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    @property
    def optional_steps(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.steps if s.optional)


def parse(document: dict) -> Definition:
    """Validate a definition document and return it, or raise DefinitionError saying what is wrong."""
    try:
        data = DefinitionSchema().load(document)
    except ma.ValidationError as err:
        raise DefinitionError(f"malformed definition: {json.dumps(err.messages, ensure_ascii=False)}") from None
    steps = {}
    for step in data["steps"]:
        if step["key"] in steps:
            raise DefinitionError(f"step {step['key']} is defined twice")
        steps[step["key"]] = step
    for step in steps.values():
        if step["department"] not in data["departments"]:
            raise DefinitionError(f"step {step['key']}: unknown department {step['department']}")
        for need in step["needs"]:
            if need not in steps:
                raise DefinitionError(f"step {step['key']} needs {need}, which is not defined")
            if steps[need]["optional"] and not step["optional"]:
                raise DefinitionError(f"required step {step['key']} cannot need optional step {need}")
    try:
        order = list(graphlib.TopologicalSorter({k: s["needs"] for k, s in steps.items()}).static_order())
    except graphlib.CycleError as err:
        raise DefinitionError(f"steps depend on each other in a cycle: {' → '.join(err.args[1])}") from None
    position = {key: i for i, key in enumerate(s["key"] for s in data["steps"])}
    # Keep the author's order among steps that the dependencies leave free.
    order.sort(key=lambda k: (_depth(k, steps), position[k]))
    return Definition(
        name=data["name"],
        version=data["version"],
        title=data["title"],
        case_target_minutes=data["case_target_minutes"],
        departments=data["departments"],
        steps=tuple(
            StepDef(
                key=k,
                title=steps[k]["title"],
                department=steps[k]["department"],
                needs=tuple(steps[k]["needs"]),
                optional=steps[k]["optional"],
                target_minutes=steps[k]["target_minutes"],
                outputs=steps[k]["outputs"],
            )
            for k in order
        ),
        document=document,
    )


def _depth(key: str, steps: dict) -> int:
    needs = steps[key]["needs"]
    return 0 if not needs else 1 + max(_depth(n, steps) for n in needs)


def packaged(name: str = DEFAULT_NAME) -> dict:
    """The definition document shipped with the engine (the contract's process)."""
    return json.loads(resources.files(__package__).joinpath(f"{name}.json").read_text("utf-8"))
