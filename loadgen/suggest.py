"""The closest allowed name to a mistyped one: unknown scenario keys, flags and commands."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin


def did_you_mean(given: str, allowed: Sequence[str], *, quote: bool = True) -> str:
    """` (did you mean 'rate'?)`, or "" when nothing allowed is close."""
    close = difflib.get_close_matches(given, allowed, n=1)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


def keys_at(model: type, loc: Sequence[Any]) -> list[str]:
    """The keys of the pydantic model that `loc` (as in a ValidationError) leads to from `model`.

    Follows field types through Annotated, optional, list, dict and tagged unions, so an
    unknown key is answered with its own model's keys at any depth. Duck-typed on
    `model_fields`, so the command line can import this without pydantic.
    """
    node: Any = model
    for part in loc:
        node = _child(node, part)
    node = _unwrap(node, None)
    return list(node.model_fields) if _is_model(node) else []


def _child(node: Any, part: Any) -> Any:
    """The type at `part` (field, list index, dict key, or union tag) of type `node`."""
    tagged = _unwrap(node, part)
    if tagged is not node and _is_model(tagged) and _has_tag(tagged, part):
        return tagged  # `part` named this member of a tagged union: it is used up
    node = tagged
    if _is_model(node):
        field = node.model_fields.get(str(part))
        return field.annotation if field else None
    origin = get_origin(node)
    if origin is list:
        return get_args(node)[0]
    if origin is dict:
        return get_args(node)[1]
    return None


def _unwrap(node: Any, tag: Any) -> Any:
    """`node` without Annotated and None; of a union of models, the one tagged `tag`."""
    while True:
        origin = get_origin(node)
        if origin is Annotated:
            node = get_args(node)[0]
        elif origin in (Union, UnionType):
            members = [member for member in get_args(node) if member is not type(None)]
            tagged = [member for member in members if _is_model(member) and _has_tag(member, tag)]
            if len(tagged) == 1:
                return tagged[0]
            if len(members) != 1:
                return node
            node = members[0]
        else:
            return node


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and isinstance(getattr(node, "model_fields", None), dict)


def _has_tag(model: Any, tag: Any) -> bool:
    """Whether a Literal field of `model` (a union's discriminator) is exactly `tag`."""
    return any(
        get_origin(field.annotation) is Literal and get_args(field.annotation) == (tag,)
        for field in model.model_fields.values()
    )
