"""Command line: ``python cli.py fit|validate|test|predict --config configs/<job>.yaml``."""

from __future__ import annotations

import inspect
import logging
import sys
from pathlib import Path

from process_setup import restart_with_tuned_malloc

if __name__ == "__main__":
    restart_with_tuned_malloc()

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from callbacks.resume import ResumeCheckpoint, find_last_checkpoint
from callbacks.wandb_logger import AutoWandbLogger
from datamodules import DocumentDataModule
from datamodules.corpus import DataError
from lightning_modules.topicbert_task import CheckpointMismatchError
from models.pretrained import EncoderNotFoundError

USER_ERRORS = (DataError, EncoderNotFoundError, CheckpointMismatchError, FileNotFoundError)


def hardware_precision(accelerator: str | None) -> str:
    """bf16-mixed on CUDA with bf16, 16-mixed on older CUDA, 32-true otherwise."""
    on_cuda = torch.cuda.is_available() and str(accelerator or "auto") in ("auto", "cuda", "gpu")
    if not on_cuda:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


class SaveAndLogConfig(SaveConfigCallback):
    """Writes ``config.yaml`` into the run folder and logs the full resolved config to W&B."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, AutoWandbLogger):
                logger.log_hyperparams({"config": self.config.as_dict()})


def drop_unaccepted_hparams(model: LightningModule) -> None:
    """Remove linked values the model's ``__init__`` does not take from its saved hyperparameters.

    The data -> model links cover every task (the topic model has no ``num_labels``, students no
    ``vocab_size``); Lightning records all applied links as hyperparameters, and a checkpoint with
    such a key could not be loaded again by ``test --ckpt_path``.
    """
    accepted = inspect.signature(type(model).__init__).parameters
    for key in [k for k in model.hparams if k not in accepted and not k.startswith("_")]:
        del model.hparams[key]


def finish_wandb(trainer) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, AutoWandbLogger):
            logger.finish()


def finish_failed_wandb_run() -> None:
    """Mark a W&B run left open by an exception as failed, so the next run starts a fresh one."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=1)


class TopicBertCLI(LightningCLI):
    """LightningCLI with data -> model links, hardware precision and an optional test after fit."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.tokenizer", "model.init_args.encoder")
        for value in ("num_labels", "vocab_size", "multi_label"):
            parser.link_arguments(f"data.{value}", f"model.init_args.{value}", apply_on="instantiate")
        parser.link_arguments("data.tfidf_features", "model.init_args.num_features", apply_on="instantiate")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="After fit, evaluate the best checkpoint (or the last weights) on the test split.",
        )
        parser.add_lightning_class_args(ResumeCheckpoint, "resume")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.precision is None:
            config.trainer.precision = hardware_precision(config.trainer.accelerator)
        # The datamodule's length-bucketed batch sampler splits batches between processes itself.
        config.trainer.use_distributed_sampler = False

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        drop_unaccepted_hparams(self.model)

    def before_fit(self) -> None:
        """``--ckpt_path last`` resumes the newest ``last.ckpt`` of this job's earlier runs (Lightning
        alone would look only in the new run's own, empty, version folder)."""
        kwargs = self.config_init["fit"]
        if kwargs.get("ckpt_path") != "last":
            return
        folders = [Path(cb.dirpath) for cb in self.trainer.checkpoint_callbacks
                   if isinstance(cb, ModelCheckpoint) and cb.dirpath]  # fmt: skip
        if self.trainer.log_dir:
            folders.append(Path(self.trainer.log_dir).parent)
        last = find_last_checkpoint(folders)
        if last is None:
            logging.getLogger(__name__).warning("No last.ckpt under %s: starting from scratch.",
                                                ", ".join(map(str, folders)))  # fmt: skip
        else:
            logging.getLogger(__name__).info("Resuming from %s", last)
        kwargs["ckpt_path"] = str(last) if last else None

    def after_fit(self) -> None:
        if self.config.fit.test_after_fit and not self.trainer.fast_dev_run:
            callback = self.trainer.checkpoint_callback
            best = callback.best_model_path if callback is not None else ""
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        finish_wandb(self.trainer)

    def _finish(self) -> None:
        finish_wandb(self.trainer)

    after_validate = after_test = after_predict = _finish


def find_user_error(err: BaseException) -> BaseException | None:
    """The user error behind ``err``: jsonargparse wraps errors raised while building classes."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, USER_ERRORS):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def main(args: list[str] | None = None) -> TopicBertCLI:
    """Run the CLI. User errors print one line and exit with status 2; from Python they are raised."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return TopicBertCLI(
            LightningModule,
            DocumentDataModule,
            subclass_mode_model=True,
            save_config_callback=SaveAndLogConfig,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    except Exception as err:
        finish_failed_wandb_run()
        user_error = find_user_error(err)
        if user_error is None:
            raise
        if args is not None:  # called from Python (tests, notebooks): raise the error itself
            raise user_error from None
        print(f"error: {user_error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
