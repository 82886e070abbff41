"""User errors: one line that names the fix, instead of a traceback or a usage text."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import yaml

from callbacks.nonfinite import NonFiniteLossError
from datamodules.formats import DataError
from lightning_modules.base import CheckpointMismatchError, task_classes
from scaffold.budget import BudgetError
from utils.options import OptionError
from utils.pretrained import EncoderNotFoundError


class ConfigFileError(ValueError):
    """A config file that is not valid YAML, or names a class that cannot be imported."""


class BatchTooLargeError(RuntimeError):
    """The accelerator ran out of memory; the message names the batch size and the fixes."""


class UsageError(ValueError):
    """A command that cannot do what it was asked as given (say ``test`` without a checkpoint)."""


USER_ERRORS = (
    UsageError,
    OptionError,
    argparse.ArgumentError,  # jsonargparse: an option of the wrong type or an unknown option
    DataError,
    EncoderNotFoundError,
    CheckpointMismatchError,
    FileNotFoundError,
    ConfigFileError,
    NonFiniteLossError,
    BatchTooLargeError,
    BudgetError,
)


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
    for path in config_files(args):
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            where, opened = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
            line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            if opened:
                line += f" (in what starts at line {opened.line + 1}, column {opened.column + 1})"
            raise ConfigFileError(
                f"{path} is not valid YAML{line}: {getattr(err, 'problem', err)}. Fix that line "
                "(python cli.py fit --print_config shows a valid config)."
            ) from None
        for class_path in class_paths(config):
            module, _, name = class_path.rpartition(".")
            try:
                getattr(importlib.import_module(module or name), name)
            except (ImportError, AttributeError, ValueError):
                tasks = ", ".join(sorted(f"lightning_modules.{t.__name__}" for t in task_classes()))
                raise ConfigFileError(
                    f"{path}: class_path {class_path!r} cannot be imported. Check the spelling; the tasks are {tasks}."
                ) from None


def out_of_memory_error(datamodule, subcommand: str) -> BatchTooLargeError:
    training = subcommand == "fit"
    size = datamodule.batch_size if training else datamodule.eval_batch_size
    option = "--data.batch_size" if training else "--data.eval_batch_size"
    keep = " (with --trainer.accumulate_grad_batches 2 to keep the effective batch)" if training else ""
    tokens = datamodule.max_length // datamodule.num_partitions
    return BatchTooLargeError(
        f"Out of accelerator memory during {subcommand} with batches of {size} sequences of up to {tokens} tokens. "
        f"Halve the batch: {option} {max(1, size // 2)}{keep}; or train in bf16-mixed, or use shorter partitions "
        "(a larger --data.num_partitions)."
    )


def one_line(err: BaseException, subcommand: str | None) -> str:
    """The user error as the one line the CLI prints; a parser error also says where the options are."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    if isinstance(err, argparse.ArgumentError):
        command = f"python cli.py {subcommand} --help" if subcommand else "python cli.py --help"
        text = f"{text.rstrip('.')}. Fix the option ({command} lists every option and its type)."
    return text


def find_user_error(err: BaseException | None) -> BaseException | None:
    """The user error behind ``err``: jsonargparse wraps errors raised while building classes."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, USER_ERRORS):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def finish_failed_wandb_run() -> None:
    """Mark a W&B run left open by an exception as failed, so the next run starts a fresh one."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=1)
