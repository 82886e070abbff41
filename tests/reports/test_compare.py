"""The comparison command: settings chosen on dev without a test pass, then seeds, then the report."""

import json

import pytest

from reports.compare import Arm, arguments_of, compare, grid_settings, settings_name
from scaffold.budget import Budget


@pytest.mark.slow  # seven cli.py processes
def test_compare_searches_on_dev_then_runs_seeds_at_the_chosen_rate_and_resumes(tmp_path, tiny_corpus_dir):
    data = ["--data.dataset", str(tiny_corpus_dir), "--data.dev_size", "0.2", "--data.min_freq", "2"]
    arms = [
        Arm("plain", ["configs/students/logreg.yaml"]),
        Arm("decayed", ["configs/students/logreg.yaml"], overrides=["--model.init_args.weight_decay", "0.01"]),
    ]
    out = tmp_path / "cmp"
    grid = [0.001, 0.2]
    common = {"budget": Budget(steps=12, evaluations=3), "search": {"lr": grid}, "seeds": [1], "out": str(out)}
    overrides = [*data, "--data.batch_size", "8", "--wandb", "false"]
    assert compare(arms[:1], **common, overrides=overrides) == 0
    choice = json.loads((out / "search/plain/choice.json").read_text())
    dev = {float(k.removeprefix("lr")): v for k, v in choice["dev_macro_f1"].items()}
    assert choice["chosen"] == {"lr": max(dev, key=lambda lr: (dev[lr], -lr))}
    for lr in grid:  # the search never scores test
        search = json.loads((out / f"search/plain/lr{lr:g}/results.json").read_text())
        assert search["status"] == "fit" and "test_macro_f1" not in search
        assert search["budget"] == "steps=12,evaluations=3" and search["optimizer_steps"] == 12
    chosen = f"lr{choice['chosen']['lr']:g}"
    run = json.loads((out / f"runs/plain/{chosen}/seed1/results.json").read_text())
    assert run["status"] == "complete" and run["hparams"]["lr"] == choice["chosen"]["lr"]
    assert (out / "report/table3.md").is_file()

    before = (out / f"runs/plain/{chosen}/seed1/results.json").stat().st_mtime_ns
    more = common | {"seeds": [1, 2]}
    assert compare(arms, **more, overrides=overrides, baseline="LogReg") == 0  # adds the missing runs only
    assert (out / f"runs/plain/{chosen}/seed1/results.json").stat().st_mtime_ns == before
    (decayed,) = (out / "runs/decayed").glob("lr*/seed1/results.json")
    assert json.loads(decayed.read_text())["hparams"]["weight_decay"] == 0.01
    # seeds go across the arms: the second arm's seed 1 is fitted before the first arm's seed 2
    assert decayed.stat().st_mtime_ns < (out / f"runs/plain/{chosen}/seed2/results.json").stat().st_mtime_ns


def test_a_search_grid_is_every_combination_and_names_its_folders():
    settings = grid_settings({"lr": [0.1, 0.5], "kd_weight": [1, 4]})
    assert settings[0] == {"kd_weight": 1, "lr": 0.1} and len(settings) == 4
    assert [settings_name(s) for s in settings] == [
        "kd_weight1_lr0.1",
        "kd_weight1_lr0.5",
        "kd_weight4_lr0.1",
        "kd_weight4_lr0.5",
    ]
    arguments = arguments_of({"lr": 0.1, "model.init_args.hidden_size": 64})
    assert sorted(zip(arguments[::2], arguments[1::2], strict=True)) == [
        ("--model.init_args.hidden_size", "64"),
        ("--model.init_args.lr", "0.1"),
    ]
    assert settings_name({}) == "config"
