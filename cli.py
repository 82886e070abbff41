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

from callbacks.nonfinite import NonFiniteLossError, NonFiniteLossGuard
from callbacks.resume import ResumeCheckpoint, find_last_checkpoint
from callbacks.wandb_logger import AutoWandbLogger
from datamodules import DocumentDataModule
from datamodules.corpus import DataError
from lightning_modules.checkpoints import CheckpointMismatchError, check_checkpoint_class
from models.pretrained import EncoderNotFoundError


class ConfigFileError(ValueError):
    """A config file that is not valid YAML, or names a class that cannot be imported."""


class BatchTooLargeError(RuntimeError):
    """The accelerator ran out of memory; the message names the batch size and the fixes."""


USER_ERRORS = (DataError, EncoderNotFoundError, CheckpointMismatchError, FileNotFoundError, ConfigFileError,
               NonFiniteLossError, BatchTooLargeError)  # fmt: skip


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
        parser.add_lightning_class_args(NonFiniteLossGuard, "nonfinite")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.precision is None:
            config.trainer.precision = hardware_precision(config.trainer.accelerator)
        # The datamodule's length-bucketed batch sampler splits batches between processes itself.
        config.trainer.use_distributed_sampler = False

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        drop_unaccepted_hparams(self.model)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except torch.OutOfMemoryError as err:
            raise out_of_memory_error(self.datamodule, subcommand) from err

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            check_checkpoint_class(ckpt_path, self.config[subcommand].model.get("class_path"))
        super()._parse_ckpt_path()

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


TASKS = ("TopicBertTask", "NVDMTask", "BiLSTMStudent", "KimCNNStudent", "LogRegStudent")


def config_files(args: list[str]) -> list[Path]:
    files, take = [], False
    for arg in args:
        if take:
            files.append(Path(arg))
        elif arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
        take = arg in ("--config", "-c")
    return [f for f in files if f.is_file()]


def class_paths(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["class_path"]] if isinstance(node.get("class_path"), str) else []
        return found + [p for value in node.values() for p in class_paths(value)]
    if isinstance(node, list):
        return [p for value in node for p in class_paths(value)]
    return []


def check_config_files(args: list[str]) -> None:
    """Name the file, the line and the fix for a broken YAML or an unknown ``class_path``, before
    jsonargparse buries either under its usage text."""
    import importlib

    import yaml

    for path in config_files(args):
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            where, opened = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
            line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            if opened:
                line += f" (in what starts at line {opened.line + 1}, column {opened.column + 1})"
            raise ConfigFileError(f"{path} is not valid YAML{line}: {getattr(err, 'problem', err)}. Fix that line "
                                  "(python cli.py fit --print_config shows a valid config).") from None  # fmt: skip
        for class_path in class_paths(config):
            module, _, name = class_path.rpartition(".")
            try:
                getattr(importlib.import_module(module or name), name)
            except (ImportError, AttributeError, ValueError):
                tasks = ", ".join(f"lightning_modules.{t}" for t in TASKS)
                raise ConfigFileError(f"{path}: class_path {class_path!r} cannot be imported. Check the spelling; "
                                      f"the tasks are {tasks}.") from None  # fmt: skip


def out_of_memory_error(datamodule, subcommand: str) -> BatchTooLargeError:
    training = subcommand == "fit"
    size = datamodule.batch_size if training else datamodule.eval_batch_size
    option = "--data.batch_size" if training else "--data.eval_batch_size"
    keep = " (with --trainer.accumulate_grad_batches 2 to keep the effective batch)" if training else ""
    return BatchTooLargeError(
        f"Out of accelerator memory during {subcommand} with batches of {size} sequences of up to "
        f"{datamodule.max_length // datamodule.num_partitions} tokens. Halve the batch: {option} {max(1, size // 2)}"
        f"{keep}; or train in bf16-mixed, or use shorter partitions (a larger --data.num_partitions)."
    )


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
        check_config_files(sys.argv[1:] if args is None else [str(a) for a in args])
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
