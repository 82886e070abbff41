"""The best checkpoint by the task's dev metric, kept across a resume into a new run folder."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, except that a run resumed into a new folder keeps the
    stopped run's best score and candidates (Lightning forgets them when the folder changes, so the
    resumed run would call its first evaluation the best). The old folder's files stay where they
    are: a checkpoint outside this run's folder is never deleted."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        moved = state_dict.get("dirpath", self.dirpath) != self.dirpath
        if moved:  # read it as if it had been saved here, minus the last path, which is this run's
            state_dict = {**state_dict, "dirpath": self.dirpath, "last_model_path": self.last_model_path}
        super().load_state_dict(state_dict)
