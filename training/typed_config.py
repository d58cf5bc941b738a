"""Parsed YAML → typed dataclasses: values checked against the fields' annotations, dotted
``--set`` keys checked against the fields and applied to the document. Every error is one
:class:`~evimae_stream.errors.InputError` line naming the key (exit code 2)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from evimae_stream.errors import InputError


def config_error(key: str, msg: str) -> InputError:
    return InputError(f"config {key}: {msg}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a parsed YAML value against a field's annotation."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except InputError:
                continue
        raise config_error(key, f"{value!r} is not a valid {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise config_error(key, f"expected a mapping, got {value!r}")
        return build(tp, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise config_error(key, f"expected a list, got {value!r}")
        return [coerce(v, args[0], f"{key}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise config_error(key, f"expected a mapping, got {value!r}")
        return {str(k): coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise config_error(key, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise config_error(key, f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise config_error(key, f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise config_error(key, f"expected a string, got {value!r}")
    raise config_error(key, f"unsupported field type {tp!r}")


def build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """``cls`` from a parsed YAML mapping, every value checked against its annotation."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise config_error(where, f"unknown key; known keys here: {', '.join(sorted(names))}")
    kwargs = {k: coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def set_dotted(doc: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.0.c`` in a nested dict/list document, creating mappings as needed; the index
    one past a list's end appends an item (``--set data.sources.3.path=...`` after three)."""
    parts = key.split(".")
    node: Any = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) > len(node):
                raise config_error(
                    key,
                    f"list index {part!r} out of range (have {len(node)} items; "
                    f"{len(node)} appends one)",
                )
            if int(part) == len(node):  # the next index appends an item
                node.append({})
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise config_error(key, f"{'.'.join(parts[:i])} is not a section")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, [] if parts[i + 1].isdigit() else {})


def check_key(root: type, key: str) -> None:
    """Reject a ``--set`` key that names no field of ``root``, before the value is parsed."""
    cls: Any = root
    for part in key.split("."):
        if cls is None:
            return
        if typing.get_origin(cls) is list:
            if not part.isdigit():
                raise config_error(key, f"{part!r} must be a list index")
            cls = typing.get_args(cls)[0]
            continue
        if typing.get_origin(cls) is dict or cls is Any:
            return
        if typing.get_origin(cls) in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(cls) if a is not type(None)]
            cls = inner[0] if len(inner) == 1 else None
            if cls is None:
                return
        if not dataclasses.is_dataclass(cls):
            raise config_error(key, f"{part!r} goes below a plain value")
        hints = typing.get_type_hints(cls)
        if part not in hints:
            raise config_error(key, f"unknown key; known keys here: {', '.join(sorted(hints))}")
        cls = hints[part]
