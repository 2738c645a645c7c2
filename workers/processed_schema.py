"""The processed-crash schema shipped with the package (schema/processed_crash.schema.json),
and validators for it and for the parts of it a rule checks client data against."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_RESOURCE = "schema/processed_crash.schema.json"


@functools.cache
def processed_crash_schema() -> dict[str, Any]:
    text = resources.files("procsupervisor.workers").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    schema = processed_crash_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@functools.cache
def definition_validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for one `$defs` entry of the schema (its own references resolved)."""
    schema = processed_crash_schema()
    part = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
    cls = jsonschema.validators.validator_for(schema)
    return cls(part, format_checker=cls.FORMAT_CHECKER)
