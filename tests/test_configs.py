"""Every config composition the documentation shows builds, with the data -> model links resolved.

The compositions are read from the README, benchmarks/README.md and the configs' own headers
(commands, and "compose after" notes), so a documented command cannot drift from the configs. Each
is built on the tiny corpus and encoder (the real encoders and data are not needed to resolve links).
"""

import re
import shlex

import pytest
import yaml
from lightning.pytorch import LightningModule

from cli import TopicBertCLI
from datamodules import DocumentDataModule
from lightning_modules import BaseTask
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "configs").rglob("*.yaml"))]


def documented_compositions() -> list[tuple[str, ...]]:
    found = set()
    for path in DOCS:
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        for line in text.splitlines():
            line = line.lstrip("#` ").split("#")[0]
            if "cli.py" in line:
                words = shlex.split(line.split("cli.py", 1)[1].split("`")[0])
                configs = tuple(words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--config", "-c"))
                for alternative in expand(configs):
                    found.add(alternative)
            after = re.search(r"[Cc]ompose (?:it )?after (configs/\S+?\.yaml)", line)
            if after and path.suffix == ".yaml":
                found.add((after.group(1), str(path.relative_to(ROOT))))
    return sorted(c for c in found if c and all("<file>" not in p for p in c))


def expand(configs: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``configs/students/<bilstm|kimcnn>.yaml`` stands for each of its alternatives."""
    out = [()]
    for config in configs:
        match = re.search(r"<([^>]+\|[^>]+)>", config)
        options = [config.replace(match.group(0), o) for o in match.group(1).split("|")] if match else [config]
        out = [(*prefix, option) for prefix in out for option in options]
    return out


def test_the_documentation_shows_compositions():
    compositions = documented_compositions()
    assert ("configs/topicbert.yaml", "configs/reuters.yaml") in compositions
    assert ("configs/students/kimcnn.yaml", "configs/distill/student.yaml") in compositions
    assert ("configs/paper/topicbert.yaml", "configs/paper/p8.yaml") in compositions
    assert len(compositions) >= 15


def merged(configs: tuple[str, ...]) -> dict:
    result: dict = {}
    for config in configs:
        for key, value in (yaml.safe_load((ROOT / config).read_text()) or {}).items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = {**result[key], **value}
            else:
                result[key] = value
    return result


@pytest.mark.parametrize("configs", documented_compositions(), ids=" + ".join)
def test_documented_composition_builds_with_links_resolved(
    configs, tiny_corpus_dir, tiny_multilabel_dir, tiny_encoder_dir, cache_dir
):
    for config in configs:
        assert (ROOT / config).is_file(), f"the documentation names {config}, which does not exist"
    data = merged(configs).get("data", {})
    corpus = tiny_multilabel_dir if data.get("dataset") == "reuters21578" else tiny_corpus_dir
    args = [arg for config in configs for arg in ("--config", str(ROOT / config))]
    args += ["--data.dataset", str(corpus), "--data.min_freq", "2", "--data.dev_size", "0.2", "--wandb", "false"]
    if data.get("tokenizer", "") is not None:  # keep the configs' "no tokens" (NVDM, tf-idf students)
        args += ["--data.tokenizer", str(tiny_encoder_dir)]
    cli = TopicBertCLI(LightningModule, DocumentDataModule, subclass_mode_model=True, run=False, args=args)
    model, dm = cli.model, cli.datamodule
    assert isinstance(model, BaseTask)
    assert type(model).__name__ == merged(configs)["model"]["class_path"].rsplit(".", 1)[-1]
    accepted = type(model).init_parameters()
    links = {
        "num_labels": dm.num_labels,
        "multi_label": dm.multi_label,
        "vocab_size": dm.vocab_size,
        "num_features": dm.tfidf_features,
        "encoder": dm.tokenizer_name,
    }
    for name, value in links.items():
        if name in accepted:
            assert model.hparams[name] == value, name
    assert set(model.hparams) - {"_class_path", "_instantiator"} <= accepted
    assert dm.hparams.bow == type(model).reads_bow(model.hparams)
    label = model.run_label(dm)
    assert cli.trainer.log_dir.endswith(f"{label}-{corpus.name}".lower() + "/version_0")
