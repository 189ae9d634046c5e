"""What a rerun may count instead of training again: an earlier FINISHED run of the same config, made by the
same library code, whose files are all still there. Anything else is trained again, and the log says why."""
from __future__ import annotations

import logging

from . import provenance
from .schema import ARTIFACTS, CODE, finished_runs

log = logging.getLogger(__name__)


def earlier_result(client, experiment_id: str, config_hash: str, name: str, other_code: bool = False):
    """The latest FINISHED run of this config that can stand for it, or None (then say why, if one was found).

    other_code: count runs made by other versions of lenet/ too (reuse_other_code=true).
    """
    found = finished_runs(client, experiment_id, config_hash)
    for run in found:
        code = run.data.tags.get(CODE, "unknown")
        if code != provenance.code_version() and not other_code:
            log.info("%s: its FINISHED run %s was made by other library code (lenet.code %s, now %s); training it "
                     "again (reuse_other_code=true counts it)", name, run.info.run_id, code, provenance.code_version())
            return None
        missing = missing_files(client, run)
        if not missing:
            return run
        log.warning("%s: its FINISHED run %s lacks %s (deleted from %s?); training it again", name,
                    run.info.run_id, ", ".join(missing), run.info.artifact_uri)
    return None


def missing_files(client, run) -> list[str]:
    """The files a FINISHED job's run says it has (its ARTIFACTS tag) that its artifact store no longer holds."""
    promised = [name for name in run.data.tags.get(ARTIFACTS, "").split(",") if name]
    if not promised:  # an older run, or one that ended without files: nothing to check
        return []
    try:
        present = {a.path for a in client.list_artifacts(run.info.run_id)}
    except Exception:  # its artifact folder itself is gone
        present = set()
    return [name for name in promised if name not in present]
