"""Act on the whole work collection: `set`, `unset`, `gc`, `reindex`, `where`, `work_collection , remove`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axq.answer import emit
from axq.errors import UsageError
from axq.verbs.command import Call, parse_overrides


def simple(function: str) -> Callable[[Call], int]:
    """Return a handler that prints what `axq.api.<function>(work_collection=...)` returns."""

    def run(call: Call) -> int:
        import axq.api as api

        emit(getattr(api, function)(work_collection=call.work_collection), call.json)
        return 0

    run.__doc__ = f"Print what axq.api.{function} returns."
    return run


def gc(call: Call) -> int:
    """Remove leftovers of failed or killed builds and rebuild the index; say what was done (JSON with --json)."""
    import axq.api as api
    from axq.store import Store

    with Store(call.work_collection).writing():  # a collection that cannot be made or written: one line, exit 1
        done = api.gc(work_collection=call.work_collection)
    if call.json:
        emit(done, True)
    else:
        removed, indexed = done["leftovers_removed"], done["entries_indexed"]
        print(f"removed {removed} leftover{'' if removed == 1 else 's'} of failed or killed builds; "
              f"indexed {indexed} entr{'y' if indexed == 1 else 'ies'}")
    return 0


def wipe(call: Call) -> int:
    """Remove every entry of the work collection."""
    import axq.api as api

    emit(f"removed {api.wipe(work_collection=call.work_collection)} entries", call.json)
    return 0


def set_settings(call: Call) -> int:
    """Set collection settings from KEY=VALUE words (values typed as in queries), or list them."""
    import axq.api as api

    if not call.words:
        return print_settings(api.settings(work_collection=call.work_collection), call.json)
    values = {}
    for word in call.words:
        key, equals, text = word.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"`{word}`: expected KEY=VALUE, e.g. `axq set imagenet_dir=/data/imagenet/val`")
        values[key] = parse_overrides([f"--{key}={text}"])[key]
    return print_settings(api.set_settings(values, work_collection=call.work_collection), call.json)


def unset_settings(call: Call) -> int:
    """Remove collection settings."""
    import axq.api as api

    return print_settings(api.unset_settings(call.words, work_collection=call.work_collection), call.json)


def print_settings(settings: dict[str, Any], as_json: bool) -> int:
    """Print the collection settings: JSON, or one `key=value` a line."""
    from axq.query import format_value

    if as_json:
        emit(settings, True)
    else:
        print("\n".join(f"{k}={format_value(v)}" for k, v in sorted(settings.items())) or "no settings")
    return 0
