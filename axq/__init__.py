"""axq: query-language orchestration of ML benchmarks, in the spirit of axs.

    import axq
    axq.byquery("loadgen_output,classified_digits,loadgen_mode=AccuracyOnly").get("accuracy")

The API lives in axq.api and is imported on first use, so that `import axq` stays cheap
on the cached-query path.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"
__all__ = ["byname", "byquery", "explore", "export_archive", "gc", "import_archive", "list_entries", "params",
           "plan", "reindex", "remove", "rules", "set_settings", "settings", "stale_reasons",
           "superseded_reasons", "sweep", "unset_settings", "where", "wipe"]


def __getattr__(name: str) -> Any:
    """Import the API lazily."""
    if name in __all__:
        import axq.api

        return getattr(axq.api, name)
    raise AttributeError(f"module 'axq' has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the API beside the module's own names, without importing it (`dir(axq)`)."""
    return sorted({*globals(), *__all__})
