"""Tasks and evaluators named on the command line: ``pkg.module:function`` or ``file.py:function``.

Everything here runs before the first request: a spec that does not import,
or names something that cannot be called, is a usage error (exit 2) naming
the option it came from, so a typo never creates an experiment.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ValidationError

__all__ = ["config_option", "load", "load_all"]


def load(spec: str, option: str, *, evaluator: bool = False) -> Any:
    """The object ``spec`` names, or a ``ValidationError`` naming ``option``.

    ``spec`` is ``MODULE:NAME`` where ``MODULE`` is a dotted module path
    (looked up from the current directory first, then ``sys.path``) or a
    ``.py`` file, and ``NAME`` may be dotted (``module:Class.method``). With
    ``evaluator``, an object with an ``evaluate`` method (a class-based
    evaluator) is accepted too, and a class with one is instantiated.
    """
    where, colon, name = spec.rpartition(":")
    if not colon or not where or not name:
        raise ValidationError(
            option, f"must be MODULE:FUNCTION, e.g. my_evals.checks:exact; got {spec!r}"
        )
    module = _module(where, option)
    value: Any = module
    for part in name.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ValidationError(
                option, f"{_shown(where)} has no {part!r} (from {spec!r})"
            ) from None
    return _checked(value, spec, option, evaluator=evaluator)


def load_all(specs: list[str] | None, option: str, *, evaluator: bool = False) -> list[Any]:
    """:func:`load` for each of the repeated ``option``."""
    return [load(spec, option, evaluator=evaluator) for spec in specs or ()]


def _checked(value: Any, spec: str, option: str, *, evaluator: bool) -> Any:
    evaluate = getattr(value, "evaluate", None)
    if evaluator and isinstance(value, type) and callable(evaluate):
        try:
            return value()
        except Exception as exc:
            raise ValidationError(
                option,
                f"{spec!r} is an evaluator class that cannot be made without arguments "
                f"({_said(exc)}); name an instance of it instead",
            ) from None
    if evaluator and not isinstance(value, type) and callable(evaluate):
        return value  # an evaluator object: name and evaluate(context)
    if not callable(value):
        what = "a function or an object with an evaluate method" if evaluator else "a function"
        raise ValidationError(option, f"{spec!r} is a {type(value).__name__}, not {what}")
    _check_signature(value, spec, option)
    return value


_CALLS = {
    "--task": ("task(input_data, config)", 2),
    "--evaluator": ("evaluator(input_data, output_data, expected_output)", 3),
    "--summary-evaluator": ("summary(inputs, outputs, expected_outputs, evaluators_results)", 4),
}


def _check_signature(value: Any, spec: str, option: str) -> None:
    """Refuse a function the runner cannot call: every row would fail with a TypeError."""
    shown, count = _CALLS.get(option, ("", 0))
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # a builtin without a signature: let the runner try
        return
    parameters = signature.parameters
    if not count or (option == "--summary-evaluator" and len(parameters) == 1):
        return  # a summary function of one parameter takes a SummaryEvaluatorContext
    if option == "--task" and "metadata" in parameters:
        shown, count = "task(input_data, config, metadata)", 3
    try:
        signature.bind(*[None] * count)
    except TypeError:
        takes = f"({', '.join(parameters)})"
        raise ValidationError(option, f"{spec!r} takes {takes}, but is called as {shown}") from None


def _module(where: str, option: str) -> ModuleType:
    if where.endswith(".py") or os.sep in where or "/" in where:
        return _from_file(where, option)
    # The console script does not put the current directory on sys.path (python -m
    # does): a module beside the user's shell must be found as it is in their tests.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (where == exc.name or where.startswith(exc.name + ".")):
            raise ValidationError(
                option, f"cannot import {where!r}: no module named {exc.name!r}"
            ) from None
        raise ValidationError(option, _import_failed(where, exc)) from None
    except Exception as exc:
        raise ValidationError(option, _import_failed(where, exc)) from None


def _from_file(where: str, option: str) -> ModuleType:
    path = Path(where)
    if not path.is_file():
        raise ValidationError(option, f"cannot import {where!r}: no such file")
    # Named after the file, as `python file.py` would run it beside its own folder,
    # so its sibling modules import.
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not name.isidentifier():
        raise ValidationError(option, f"cannot import {where!r}: not a Python module name")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module  # pickling and dataclasses look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ValidationError(option, _import_failed(where, exc)) from None
    return module


def _import_failed(where: str, exc: Exception) -> str:
    """What went wrong importing ``where``, and where in the user's code."""
    if isinstance(exc, SyntaxError):
        place = f" ({exc.filename}, line {exc.lineno})" if exc.filename else ""
        return f"importing {where!r} failed: SyntaxError: {exc.msg}{place}"
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "importlib" not in f.filename]
    place = f" ({ours[-1].filename}, line {ours[-1].lineno})" if ours else ""
    return f"importing {where!r} failed: {_said(exc)}{place}"


def _said(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _shown(where: str) -> str:
    return f"file {where!r}" if where.endswith(".py") else f"module {where!r}"


def config_option(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object, given inline or as ``@FILE``."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]!r}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object (or @FILE holding one)")
    return value
