"""A run resumed into a new folder keeps the stopped run's best checkpoint and score."""

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from callbacks.checkpoint import BestCheckpoint


def saved_state(tmp_path) -> dict:
    old = ModelCheckpoint(dirpath=str(tmp_path / "version_0/checkpoints"), monitor="val_macro_f1", mode="max")
    old.best_model_score = torch.tensor(0.84)
    old.best_model_path = str(tmp_path / "version_0/checkpoints/epoch0.ckpt")
    old.best_k_models = {old.best_model_path: old.best_model_score}
    old.kth_best_model_path, old.kth_value = old.best_model_path, old.best_model_score
    return old.state_dict()


def test_the_best_score_survives_a_new_run_folder_where_lightning_forgets_it(tmp_path):
    state = saved_state(tmp_path)
    with pytest.warns(UserWarning, match="dirpath has changed"):
        forgetful = ModelCheckpoint(dirpath=str(tmp_path / "version_1/checkpoints"), monitor="val_macro_f1", mode="max")
        forgetful.load_state_dict(state)
    assert forgetful.best_model_score is None  # what this class exists to avoid
    kept = BestCheckpoint(dirpath=str(tmp_path / "version_1/checkpoints"), monitor="val_macro_f1", mode="max")
    kept.load_state_dict(state)
    assert float(kept.best_model_score) == pytest.approx(0.84)
    assert kept.best_model_path.endswith("version_0/checkpoints/epoch0.ckpt") and kept.dirpath.endswith(
        "version_1/checkpoints"
    )
    assert list(kept.best_k_models) == [kept.best_model_path] and kept.last_model_path == ""
