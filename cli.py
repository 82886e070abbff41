"""Command line: ``python cli.py fit|validate|test|predict --config configs/<job>.yaml``."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from pathlib import Path

from utils.process import restart_with_tuned_malloc

# answered before torch and Lightning are imported (seconds on 2 cores); each subcommand's --help
# comes from the full parser
TOP_LEVEL_HELP = """usage: cli.py [-c CONFIG] {fit,validate,test,predict,export,batch-predict} ...

Energy-efficient document classification: TopicBERT, fine-tuned BERT, the NVDM topic model and
students distilled from a teacher, with time, memory, energy and CO2 measured next to macro-F1.

subcommands (python cli.py <subcommand> --help lists every option):
  fit         train on the train split, keep the best checkpoint by dev, then score it on test
  validate    score a checkpoint (--ckpt_path) on the dev split
  test        score a checkpoint (--ckpt_path) on the test split
  predict     write one JSON line per document: labels, probabilities, topics (--ckpt_path)
  export      write a checkpoint as a Hugging Face-style folder with a model card
              (--ckpt_path CKPT --out DIR), loaded by serving.DocumentClassifier
  batch-predict  stream a corpus of any size through an exported model, in flat memory
              (--model DIR --input FILE --out FILE.jsonl)

options:
  -h, --help            show this help and exit
  -c CONFIG, --config CONFIG
                        a YAML config (configs/*.yaml); give several to compose them
  --print_config        print the resolved config and exit

example: python cli.py fit --config configs/topicbert.yaml
"""

if __name__ == "__main__":
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(TOP_LEVEL_HELP, end="")
        raise SystemExit(0)
    if sys.argv[1:2] == ["batch-predict"]:
        # flat memory over a corpus of any size: oneDNN keeps the kernels of every input shape it meets
        # (1,024 by default) and a stream of documents meets thousands, and the malloc tuning below
        # keeps freed memory for the next training step, which a stream does not need
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    else:
        restart_with_tuned_malloc()

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins import CheckpointIO

from callbacks.summary import RunSummary
from datamodules import DocumentDataModule
from datamodules.assets import InferenceAssets, materialise
from datamodules.cache import writable_cache_dir
from lightning_modules.base import BaseTask, check_checkpoint_class, read_checkpoint, task_class
from scaffold.checkpoint_io import AtomicCheckpointIO
from scaffold.console import calm_console
from scaffold.errors import (
    UsageError,
    check_config_files,
    find_user_error,
    finish_failed_wandb_run,
    one_line,
    out_of_memory_error,
)
from scaffold.resume import checkpoint_to_resume, config_fingerprint
from scaffold.run import (
    add_scaffold_arguments,
    job_name,
    scaffold_callbacks,
    scaffold_loggers,
    set_checkpoint_defaults,
)
from scaffold.wandb_logger import AutoWandbLogger
from utils.hardware import hardware_precision
from utils.options import check_ranges

log = logging.getLogger(__name__)


class SaveAndLogConfig(SaveConfigCallback):
    """Writes ``config.yaml`` into the run folder and logs the full resolved config to W&B."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, AutoWandbLogger):
                logger.log_hyperparams({"config": self.config.as_dict()})


def drop_unaccepted_hparams(model: LightningModule) -> None:
    """Remove linked values the model does not take from its saved hyperparameters.

    The data -> model links cover every task (the topic model has no ``num_labels``, students no
    ``vocab_size``); Lightning records all applied links as hyperparameters, and a checkpoint with
    such a key could not be loaded again by ``test --ckpt_path``.
    """
    accepted = type(model).init_parameters() if isinstance(model, BaseTask) else set(model.hparams)
    for key in [k for k in model.hparams if k not in accepted and not k.startswith("_")]:
        del model.hparams[key]


def discard_failed_run(folder: Path, subcommand: str, created: bool) -> None:
    """Leave nothing of a run that failed without a result: an evaluation's folder that this process
    created (it holds only its config and logs), a fit's folder if still empty, then the job and
    root folders if that left them empty. A fit that started keeps its folder, marked failed."""
    if subcommand in EVALUATING and created:
        shutil.rmtree(folder, ignore_errors=True)
    for empty in (folder, folder.parent, folder.parent.parent):
        with contextlib.suppress(OSError):  # not empty, or not there
            empty.rmdir()


def restore_inputs(config, ckpt_path: str, subcommand: str) -> None:
    """Feed an evaluated model from its own checkpoint: the data settings that decide its inputs,
    its labels, vocabulary and tf-idf vectorizer (``--data.restore_from``), and its tokenizer and
    encoder configuration, written to a cache folder, so nothing is downloaded or rebuilt from the
    training data. A checkpoint from before it carried them is read the old way, with a warning."""
    checkpoint = read_checkpoint(ckpt_path)
    assets = InferenceAssets.from_checkpoint(checkpoint)
    if assets is None:
        log.warning(
            "%s predates self-contained checkpoints: its labels, vocabulary and tokenizer are rebuilt from the "
            "training data and the encoder is loaded by name.",
            ckpt_path,
        )
        return
    config.data.restore_from = ckpt_path
    if subcommand == "predict" and config.data.predict_file and assets.dataset:
        config.data.dataset = assets.dataset  # read nowhere: it names the run's folder after the model's data
    for key, value in assets.settings.items():
        config.data[key] = value
    tokenizer = None
    if assets.encoder_files is not None:
        trained_with = checkpoint.get("hyper_parameters", {}).get("encoder") or "encoder"
        tokenizer = str(materialise(assets.encoder_files, writable_cache_dir(config.data.cache_dir), trained_with))
    config.data.tokenizer = tokenizer
    init_args = config.model.get("init_args")
    if init_args is not None and "encoder" in init_args:
        init_args.encoder = tokenizer


def check_fits(checkpoint: dict, model, datamodule) -> None:
    """The checkpoint an evaluation loads is of this task, shapes and labels."""
    if isinstance(model, BaseTask):
        model.check_checkpoint(checkpoint)
    datamodule.load_state_dict(checkpoint.get(type(datamodule).__qualname__, {}))


def finish_wandb(trainer) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, AutoWandbLogger):
            logger.finish()


EVALUATING = ("validate", "test", "predict")


def with_atomic_checkpoints(plugins) -> list:
    """The trainer's plugins with checkpoints written atomically beside their target, unless the
    user brings a checkpoint writer of their own."""
    plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins] if plugins else []
    return plugins if any(isinstance(p, CheckpointIO) for p in plugins) else [*plugins, AtomicCheckpointIO()]


def check_evaluated_checkpoint(subcommand: str, ckpt_path: str | None) -> None:
    """validate / test / predict score a trained model: without a checkpoint file they would score
    the untrained weights the config builds."""
    if not ckpt_path:
        raise UsageError(
            f"{subcommand} needs a trained model: pass --ckpt_path with a checkpoint that fit wrote "
            "(runs/<job>/version_<n>/checkpoints/*.ckpt); without one it would score untrained weights."
        )
    if not Path(ckpt_path).is_file():
        raise UsageError(
            f"--ckpt_path {ckpt_path} is not a file; pass the path of a .ckpt file (fit writes them under "
            "runs/<job>/version_<n>/checkpoints/)."
        )


class TopicBertCLI(LightningCLI):
    """LightningCLI with data -> model links, the run scaffold (folders, loggers, telemetry,
    checkpoints; see ``scaffold.run``), hardware precision and an optional test after fit."""

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
        add_scaffold_arguments(parser)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_ranges("data", config.data.as_dict())
        check_ranges("model", config.model.get("init_args") and config.model.init_args.as_dict())
        check_ranges("budget", config.budget and config.budget.as_dict())
        if config.trainer.precision is None:
            config.trainer.precision = hardware_precision(config.trainer.accelerator)
        # The datamodule's length-bucketed batch sampler splits batches between processes itself.
        config.trainer.use_distributed_sampler = False
        task = task_class(config.model.class_path)
        if issubclass(task, BaseTask):
            config.data.bow = task.reads_bow(config.model.init_args)
        set_checkpoint_defaults(config, task)

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        drop_unaccepted_hparams(self.model)

    def instantiate_trainer(self, **kwargs):
        """The trainer with the scaffold's loggers and callbacks (see ``scaffold.run``)."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        if self.subcommand in EVALUATING:  # before any run folder exists
            check_fits(read_checkpoint(config["ckpt_path"]), self.model, self.datamodule)
        trainer_config = {**config["trainer"], **kwargs}
        budget = config.get("budget")
        if budget is not None:
            dm = self.datamodule
            dm.train_fraction = budget.apply(trainer_config, len(dm.views.split(dm.train_split)))
        if trainer_config.get("logger") is None:
            loggers = scaffold_loggers(config, job_name(config["run"], self.model, self.datamodule))
            trainer_config["logger"] = loggers or False
        user = list(trainer_config.get("callbacks") or [])
        callbacks = scaffold_callbacks(
            config,
            user,
            checkpointing=trainer_config.get("enable_checkpointing") is not False,
            logging_on=bool(trainer_config["logger"]),
        )
        self.run_folder_created = bool(config["csv"]) and config["run"].version is None
        if not any(isinstance(cb, ModelCheckpoint) for cb in user + callbacks):
            trainer_config["enable_checkpointing"] = False  # else Lightning adds a checkpoint of its own
        trainer_config["plugins"] = with_atomic_checkpoints(trainer_config.get("plugins"))
        self.fingerprint = None  # what makes a fit this job (a restored evaluation reads no training data)
        if self.subcommand not in EVALUATING:
            self.fingerprint = config_fingerprint(
                self.config[self.subcommand].as_dict() if self.subcommand else self.config.as_dict(),
                self.datamodule.corpus.fingerprint,
            )
        for callback in user + callbacks:
            if isinstance(callback, RunSummary):
                callback.config_fingerprint = self.fingerprint
        return self._instantiate_trainer(trainer_config, callbacks)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except torch.OutOfMemoryError as err:
            raise out_of_memory_error(self.datamodule, subcommand) from err
        except Exception:
            for logger in self.trainer.loggers:
                if isinstance(logger, CSVLogger):
                    discard_failed_run(Path(logger.log_dir), subcommand, self.run_folder_created)
            raise

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if subcommand in EVALUATING:
            check_evaluated_checkpoint(subcommand, ckpt_path)
        if ckpt_path and Path(ckpt_path).is_file():
            check_checkpoint_class(ckpt_path, self.config[subcommand].model.get("class_path"))
        super()._parse_ckpt_path()
        if subcommand in EVALUATING and ckpt_path:
            restore_inputs(self.config[subcommand], ckpt_path, subcommand)

    def before_fit(self) -> None:
        """``--ckpt_path last`` resumes the newest ``last.ckpt`` of an unfinished run of this job
        (``scaffold.resume``; Lightning alone would look only in the new run's own, empty, folder)."""
        kwargs = self.config_init["fit"]
        if kwargs.get("ckpt_path") != "last":
            return
        callbacks = self.trainer.checkpoint_callbacks
        folders = [Path(cb.dirpath) for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath]
        if self.trainer.log_dir:
            folders.append(Path(self.trainer.log_dir).parent)
        last = checkpoint_to_resume(folders, self.fingerprint)
        if last is None:
            log.warning("No last.ckpt under %s: starting from scratch.", ", ".join(map(str, folders)))
        else:
            log.info("Resuming from %s", last)
        kwargs["ckpt_path"] = str(last) if last else None

    def after_fit(self) -> None:
        # fast_dev_run is set on the Trainer by Lightning, not declared on it
        if self.config.fit.test_after_fit and not self.trainer.fast_dev_run:  # type: ignore[attr-defined]
            callback = self.trainer.checkpoint_callback
            best = getattr(callback, "best_model_path", "") if callback is not None else ""
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        finish_wandb(self.trainer)

    def _finish(self) -> None:
        finish_wandb(self.trainer)

    after_validate = after_test = after_predict = _finish


def main(args: list[str] | None = None) -> TopicBertCLI | Path:
    """Run the CLI. User errors print one line and exit with status 2; from Python they are raised."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    calm_console()
    from_python = args is not None
    try:
        given = [str(a) for a in args] if args is not None else sys.argv[1:]
        if given[:1] == ["export"]:
            from serving.export import main as export

            return export(given[1:])
        if given[:1] == ["batch-predict"]:
            from serving.batch import main as batch_predict

            return batch_predict(given[1:])
        check_config_files(given)
        completed = with_checkpoint_model(given)
        if from_python:
            args = completed
        else:
            sys.argv[1:] = completed  # (LightningCLI warns when given args while the command line has some)
        return TopicBertCLI(
            LightningModule,
            DocumentDataModule,
            subclass_mode_model=True,
            save_config_callback=SaveAndLogConfig,
            save_config_kwargs={"overwrite": True},
            # parse errors are raised, to be printed as one line below, not after the whole usage text
            parser_kwargs={"exit_on_error": False, **{c: {"exit_on_error": False} for c in ("fit", *EVALUATING)}},
            args=args,
        )
    except Exception as err:
        finish_failed_wandb_run()
        user_error = find_user_error(err)
        if user_error is None:
            raise
        if from_python:  # called from Python (tests, notebooks): raise the error itself
            raise user_error from None
        print(f"error: {one_line(user_error, subcommand_of(sys.argv[1:]))}", file=sys.stderr)
        raise SystemExit(2) from None


def with_checkpoint_model(args: list[str]) -> list[str]:
    """``validate``/``test``/``predict --ckpt_path X`` without a config or ``--model``: the model is
    the checkpoint's own task (its settings then come from the checkpoint, as always)."""
    if subcommand_of(args) not in EVALUATING or any(a.split("=")[0] in ("--config", "-c", "--model") for a in args):
        return args
    path = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ckpt_path"), None)
    path = path or next((a.split("=", 1)[1] for a in args if a.startswith("--ckpt_path=")), None)
    if not path or not Path(path).is_file():
        return args  # refused with its own message by the parser or check_evaluated_checkpoint
    class_path = read_checkpoint(path).get("hyper_parameters", {}).get("_class_path")
    return [*args, "--model", class_path] if class_path else args


def subcommand_of(args: list[str]) -> str | None:
    return next((a for a in args if a in ("fit", *EVALUATING)), None)


if __name__ == "__main__":
    main()
