import socket

import pytest

from scaffold.wandb_logger import AutoWandbLogger
from utils.wandb_mode import resolve_wandb_mode


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc


def test_explicit_mode_and_environment_win(no_wandb_env, monkeypatch):
    assert resolve_wandb_mode("disabled")[0] == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert resolve_wandb_mode("auto") == ("offline", "WANDB_MODE")


def test_no_credentials_means_offline(no_wandb_env):
    mode, reason = resolve_wandb_mode("auto")
    assert mode == "offline" and "wandb login" in reason


def test_credentials_but_no_server_means_offline_without_hanging(no_wandb_env, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    mode, reason = resolve_wandb_mode("auto", timeout_s=1.0)
    assert mode == "offline" and "not reachable" in reason


def test_credentials_in_netrc_are_found(no_wandb_env, tmp_path):
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    (tmp_path / ".netrc").chmod(0o600)
    from utils.wandb_mode import has_wandb_credentials

    assert has_wandb_credentials("api.wandb.ai")
    assert not has_wandb_credentials("other.example")


def test_logger_never_uploads_models_offline(no_wandb_env, tmp_path):
    logger = AutoWandbLogger(save_dir=str(tmp_path), log_model=True)
    assert logger.mode == "offline" and logger._log_model is False


def test_a_relative_folder_is_fixed_where_the_logger_was_made(no_wandb_env, tmp_path, monkeypatch):
    # W&B's long-lived service process would resolve a relative folder against its own working
    # directory, so a run made after a chdir would write its records somewhere else
    monkeypatch.chdir(tmp_path)
    logger = AutoWandbLogger(save_dir="runs", mode="offline")
    assert logger.save_dir == str(tmp_path / "runs")
