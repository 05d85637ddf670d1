"""Starting a Ray Train run: an earlier run's checkpoints in the run folder are never silently continued."""

from __future__ import annotations

import pytest

from soilnet.training.trainer import SNAPSHOT_FILE, refuse_earlier_run


def test_an_earlier_runs_checkpoints_are_refused_unless_resuming(tmp_path):
    refuse_earlier_run(str(tmp_path), "finetune", None)  # a fresh folder is fine
    (tmp_path / "finetune").mkdir()
    (tmp_path / "finetune" / SNAPSHOT_FILE).write_text("{}")
    with pytest.raises(
        FileExistsError, match=r"finetune already holds the checkpoints of an earlier run.*--resume-from"
    ):
        refuse_earlier_run(str(tmp_path), "finetune", None)
    refuse_earlier_run(str(tmp_path), "finetune", str(tmp_path / "finetune" / "checkpoint_x"))
    refuse_earlier_run(str(tmp_path), "other-name", None)
