"""The one exception type for problems a user can cause (bad file, bad sidecar, bad config)."""

from __future__ import annotations


class CallQAError(Exception):
    """A problem with the user's input, with a message that names the file and the field.

    The batch records the message on the recording and goes on with the next one.
    """


def field_problem(err: dict) -> str:
    """What is wrong with one field, from one of pydantic's errors, in the words of a supervisor fixing
    a file (callqa.toml, a sidecar JSON). The caller names the file and the field."""
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "value_error":  # our own validators, already in Chinese
        return str(ctx.get("error", err["msg"]))
    if kind == "extra_forbidden":
        return "没有这个设置项（拼写错误？）"
    if kind == "missing":
        return "缺少这一项"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "应为数字"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "应为整数"
    if kind == "bool_parsing":
        return "应为 true 或 false"
    if kind == "literal_error":
        return f"应为 {ctx.get('expected', '')} 之一".replace(" or ", " 或 ")
    if kind.startswith(("datetime", "date_")):
        return "应为时间，例如 2026-11-20T09:15:02+08:00"
    if kind == "timezone_aware":
        return "缺少时区，例如 2026-11-20T09:15:02+08:00"
    if kind == "string_too_short":
        return "不能为空"
    if kind == "string_too_long":
        return f"太长（最多 {ctx.get('max_length')} 个字符）"
    if kind in ("greater_than_equal", "greater_than"):
        return (
            f"不能小于 {ctx.get('ge', ctx.get('gt'))}"
            if kind.endswith("equal")
            else f"应大于 {ctx.get('gt')}"
        )
    if kind in ("less_than_equal", "less_than"):
        return (
            f"不能大于 {ctx.get('le', ctx.get('lt'))}"
            if kind.endswith("equal")
            else f"应小于 {ctx.get('lt')}"
        )
    if kind == "string_type":
        return "应为文字（加引号）"
    if kind == "list_type":
        return "应为列表（[...]）"
    if kind in ("dict_type", "model_type"):
        return "应为一节设置（[...] 表）"
    return f"有误：{err['msg']}"


# Errors about a field's value: the value is worth quoting back (not for a missing or unknown key).
QUOTES_VALUE = frozenset({"missing", "extra_forbidden", "dict_type", "model_type", "value_error"})
