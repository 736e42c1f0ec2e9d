"""The JSON answer a Gemini request asks for (generationConfig.responseMimeType application/json).

With a schema (responseJsonSchema: JSON Schema; responseSchema: Gemini's OpenAPI subset, types in
capitals) the answer is the smallest value that fits it: every property present, an enum's first
value, numbers at their minimum (else 1), arrays of minItems items (at least one). Every free string
is the demo's report, so a structured answer still says which key headers reached the upstream.
Without a schema it is the report as a JSON string. Gemini CLI's router asks this way for
{"complexity_reasoning": string, "complexity_score": integer} and retries until the answer parses.
"""

from __future__ import annotations

import json
import math

JSON_MIME = "application/json"


def as_requested(config, text: str) -> str:
    """`text`, or the JSON the generation config asks for, carrying `text` in its strings."""
    if not isinstance(config, dict) or config.get("responseMimeType") != JSON_MIME:
        return text
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    value = instance(schema, text) if isinstance(schema, dict) else text
    return json.dumps(value, ensure_ascii=False)


def _type(schema: dict) -> str | None:
    """The schema's type, lower case (Gemini writes OBJECT); the first non-null of a list of types."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), kind[0] if kind else None)
    if kind is None and isinstance(schema.get("properties"), dict):
        return "object"
    return str(kind).lower() if kind is not None else None


def _bound(schema: dict, name: str):
    value = schema.get(name)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _number(schema: dict, integer: bool):
    """The smallest number the schema allows (1 when it sets no minimum), capped by its maximum."""
    if (low := _bound(schema, "minimum")) is None:
        above = _bound(schema, "exclusiveMinimum")
        low = 1 if above is None else above + (1 if integer else 0.5)
    if (high := _bound(schema, "maximum")) is not None:
        low = min(low, high)
    return math.ceil(low) if integer else float(low)


def instance(schema: dict, text: str):
    """The smallest value that fits `schema`, its free strings set to `text`."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combined in ("anyOf", "oneOf", "allOf"):
        options = [s for s in schema.get(combined) or [] if isinstance(s, dict)]
        if options:
            return instance(options[0], text)
    kind = _type(schema)
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: instance(sub if isinstance(sub, dict) else {}, text) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        count = max(int(schema.get("minItems") or 0), 1)
        if isinstance(schema.get("maxItems"), int):
            count = min(count, int(schema["maxItems"]))
        return [instance(items, text) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    limit = schema.get("maxLength")
    return text[:limit] if isinstance(limit, int) else text
