"""MLPerf Inference knowledge shared by the recipes, imported by name (`import axq_mlperf.logs`).

The kernel puts `entries/lib` on sys.path before it runs recipe code, and the LoadGen child
process gets it on PYTHONPATH. Modules, one concern each:

- `scenarios`: scenarios, modes, kinds of run, compliance tests, headline metrics, LoadGen's checks
- `logs`: the summary and detail log parsers (the only ones)
- `userconf`: writing and strictly reading `user.conf`
- `planning`: the user.conf values a run's parameters fix, and the targets to time
- `config`: the typed configuration between a recipe's build and its LoadGen child
- `child`: running that child process, its output into the build log
- `results`: what a finished run's logs say (validity, headline, accuracy)
- `compliance`: audit.config and TEST01/TEST04 verification
- `hashing`, `truncation`: file digests and the accuracy-log truncation of submissions
- `submission`: the submission tree the official checker reads
- `training`: the embedded models' seeded training loop and weights file

Only `scenarios`, `logs`, `userconf` and `hashing` are light enough for a getter; nothing
here imports torch, numpy or LoadGen at the top.
"""
