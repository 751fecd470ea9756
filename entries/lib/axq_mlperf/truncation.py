"""Truncate an accuracy log for submission the way tools/submission/truncate_accuracy_log.py does.

The official tool appends `hash=<sha256 of the full mlperf_log_accuracy.json>` to
accuracy.txt (after a blank line) and replaces the log by its first 4096 and last 4096
characters joined by "\\n\\n...\\n\\n" (logs under 4096 bytes stay whole). Here the full
log stays where it is and the truncated copy is written beside accuracy.txt.
"""

from __future__ import annotations

from pathlib import Path

from axq_mlperf.hashing import file_sha256

VIEWABLE_SIZE = 4096
ELLIPSIS = "\n\n...\n\n"



def truncated_text(full_log: Path, keep_bytes: int = VIEWABLE_SIZE) -> str:
    """Return the log's first and last keep_bytes joined by the official ellipsis."""
    text = Path(full_log).read_bytes().decode("utf-8")
    if len(text) < keep_bytes:
        return text
    return text[:keep_bytes] + ELLIPSIS + text[-keep_bytes:]


def truncate_accuracy_log(full_log: Path, out_txt: Path, keep_bytes: int = VIEWABLE_SIZE,
                          out_log: Path | None = None) -> str:
    """Append the full log's hash line to out_txt, write the truncated log; return the hash.

    out_txt usually already holds the accuracy script's report (the checker reads the
    accuracy figure from it). out_log defaults to mlperf_log_accuracy.json beside out_txt.
    """
    out_txt, out_log = Path(out_txt), Path(out_log or Path(out_txt).with_name("mlperf_log_accuracy.json"))
    digest = file_sha256(full_log)
    truncated = truncated_text(full_log, keep_bytes)
    out_txt.parent.mkdir(parents=True, exist_ok=True)
    with open(out_txt, "a", encoding="utf-8") as handle:
        handle.write(f"\nhash={digest}\n")
    if out_log.resolve() != Path(full_log).resolve():
        out_log.write_text(truncated, encoding="utf-8")
    return digest
