"""The verbs of the command line, one module per family, all declared in one table.

Find a verb from its name:

| verbs | module |
| --- | --- |
| `byquery`, `byname`, `show`, `rm`; stages `, get`, `, get_path`, `, show`, `, remove` | `axq/verbs/byquery.py` |
| `plan`, `params`, `rules` | `axq/verbs/plan.py` |
| `list` | `axq/verbs/listing.py` |
| `sweep`, `explore` | `axq/verbs/sweep.py` |
| `export`, `import` | `axq/verbs/export.py` |
| `set`, `unset`, `gc`, `reindex`, `where`, `work_collection` | `axq/verbs/collection.py` |
| `help`; the table `VERBS`, help text, reading a command line | `axq/verbs/registry.py` |

What a verb is (`Verb`, `Option`, `Stage`, the parsed `Call`, the global options) is
declared in `axq/verbs/command.py`. A command line is a pipeline of stages separated by
lone `,` words; the first names the verb, later ones act on what it found (`byquery Q ,
get KEY`). Options belong to verbs (and to the stages a verb allows), may appear anywhere
on the line, and take their value as `--opt value` or `--opt=value`. Words `--key=value`
that are not options are parameter overrides for the verbs that take a query (`byquery`,
`plan`, `sweep`, `params`), and errors for the others. Global options (`--work-collection
DIR`, `--json`, `--quiet`/`-q`, `--verbose`/`-v`, `--debug`) work with every verb.

Not on the cached-query path: `axq.cli` answers a cached `byquery Q , get KEY` without
importing this package.
"""

from axq.verbs.registry import VERBS, run

__all__ = ["VERBS", "run"]
