"""EnergyTracker on tiny CPU fits with the real CodeCarbon tracker: the energy split, the measuring setup,
CodeCarbon's emissions.csv in the run folder, ``so_far`` and checkpoints."""

import csv
import glob
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from codecarbon import OfflineEmissionsTracker
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from callbacks.energy import SPLIT, EnergyTracker

EPOCHS = 2
COST_SETUP_KEYS = {
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "country_iso_code",
    "grid_intensity_g_per_kwh",
    "pue",
    "tracking_mode",
    "cpu_model",
    "cpu_count",
    "gpu_model",
    "gpu_count",
    "ram_total_gb",
    "codecarbon_version",
}


class SoFarProbe(Callback):
    """Calls ``so_far()`` mid-epoch (every other batch), at every validation end and at epoch ends."""

    def __init__(self, energy: EnergyTracker):
        self.energy = energy
        self.seen: list[dict[str, float]] = []
        self.at_epoch_end: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx % 2:
            self.seen.append(self.energy.so_far())

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.seen.append(self.energy.so_far())
            self.seen.append(self.energy.so_far())  # twice in a row: still counted once

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # runs after the tracker's: epoch closed
        self.at_epoch_end.append(self.energy.so_far())
        self.seen.append(self.at_epoch_end[-1])


def trainer(folder: Path, callbacks: list, **kwargs) -> pl.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": EPOCHS,
        "limit_train_batches": 8,
        "limit_val_batches": 2,
        "num_sanity_val_steps": 1,
        "val_check_interval": 4,  # validation mid-epoch too, as time-to-quality runs do
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": str(folder),
    } | kwargs
    return pl.Trainer(callbacks=callbacks, **options)


def energy_tracker() -> EnergyTracker:
    return EnergyTracker(measure_power_secs=0.2)


def rapl_readable() -> bool:
    return any(os.access(p, os.R_OK) for p in glob.glob("/sys/class/powercap/intel-rapl*/**/energy_uj", recursive=True))


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    """A tiny fit with a CSV logger, ``so_far`` probes, a spy on CodeCarbon's tasks and a last checkpoint."""
    folder = tmp_path_factory.mktemp("energy")
    energy = energy_tracker()
    probe = SoFarProbe(energy)
    tasks: list = []
    real_stop_task = OfflineEmissionsTracker.stop_task

    def spy(self, *args, **kwargs):
        data = real_stop_task(self, *args, **kwargs)
        tasks.append(data)
        return data

    checkpoint = ModelCheckpoint(dirpath=folder / "checkpoints", save_last=True, save_top_k=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OfflineEmissionsTracker, "stop_task", spy)
        run = trainer(
            folder, [energy, probe, checkpoint], logger=CSVLogger(folder, name="run"), enable_checkpointing=True
        )
        run.fit(BoringModel())
    run_dir = Path(str(run.log_dir))
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return energy, probe, tasks, run_dir, rows, folder / "checkpoints/last.ckpt"


def column(rows, name) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name)]


def test_energy_split_adds_up_to_the_total(fit):
    energy, _, _, _, rows, _ = fit
    summary = energy.summary()
    assert summary["energy_kwh"] > 0
    for name in SPLIT:
        assert summary[name] >= 0, name
        assert len(column(rows, f"{name}_epoch")) == EPOCHS
    split = sum(summary[name] for name in SPLIT)
    assert split == pytest.approx(summary["energy_kwh"], rel=1e-9)
    assert summary["energy_ram_kwh"] > 0  # CodeCarbon's RAM model gives power to any memory size


def test_cost_setup_says_how_energy_was_measured(fit):
    setup = fit[0].summary()["cost_setup"]
    assert set(setup) >= COST_SETUP_KEYS
    if rapl_readable():
        assert setup["cpu_energy"] == "measured (RAPL)"
    else:
        assert setup["cpu_energy"].startswith("estimated")
        assert setup["cpu_tdp_w"] is None or setup["cpu_tdp_w"] > 0
    if not torch.cuda.is_available():
        assert setup["gpu_energy"] == "none" and setup["gpu_count"] == 0
    assert setup["ram_energy"].startswith("estimated")
    assert setup["country_iso_code"] == "USA" and setup["tracking_mode"] == "process" and setup["pue"] == 1.0
    assert 100 < setup["grid_intensity_g_per_kwh"] < 1000  # the USA in CodeCarbon's table
    summary = fit[0].summary()
    assert summary["co2_measured_g"] / summary["energy_kwh"] == pytest.approx(setup["grid_intensity_g_per_kwh"])
    assert setup["cpu_count"] >= 1 and setup["ram_total_gb"] > 0 and setup["cpu_model"]
    import codecarbon

    assert setup["codecarbon_version"] == codecarbon.__version__


def test_emissions_csv_is_kept_in_the_run_folder(fit):
    energy, _, _, run_dir, _, _ = fit
    (row,) = list(csv.DictReader((run_dir / "emissions.csv").open()))  # one fit session, one row
    assert row["project_name"] == "topicbert" and row["country_iso_code"] == "USA"
    # the whole session: at least the epochs' energy and time (sanity check and fit end come on top)
    assert float(row["energy_consumed"]) >= energy.totals["energy_kwh"] * (1 - 1e-9)
    durations = [float(t.duration) for t in fit[2]]
    assert float(row["duration"]) >= sum(durations)
    (per_task,) = run_dir.glob("emissions_epochs_*.csv")
    names = [r["task_name"] for r in csv.DictReader(per_task.open())]
    assert names[0] == "epoch0" and "epoch1" in names and "epoch0-part1" in names


def test_so_far_counts_every_measurement_once(fit):
    energy, probe, tasks, _, rows, _ = fit
    totals = energy.summary()
    # every task CodeCarbon measured lands in the totals exactly once
    assert len(tasks) > 3 * EPOCHS  # so_far really split the epochs
    assert sum(t.energy_consumed for t in tasks) == pytest.approx(totals["energy_kwh"], rel=1e-12)
    assert sum(t.cpu_energy for t in tasks) == pytest.approx(totals["energy_cpu_kwh"], rel=1e-12, abs=1e-18)
    assert sum(t.emissions for t in tasks) * 1000 == pytest.approx(totals["co2_measured_g"], rel=1e-12)
    # the epochs log what they would without so_far: their sum is the total
    for name in ("energy_kwh", "co2_measured_g", "co2_paper_eq_g", *SPLIT):
        per_epoch = column(rows, f"{name}_epoch")
        assert len(per_epoch) == EPOCHS
        assert sum(per_epoch) == pytest.approx(totals[name], rel=1e-6, abs=1e-15), name
        assert column(rows, f"{name}_total")[-1] == pytest.approx(totals[name], rel=1e-6, abs=1e-15), name
    # so_far never goes back, and ends where the fit does
    for name in ("energy_kwh", "co2_measured_g", "co2_paper_eq_g"):
        values = [seen[name] for seen in probe.seen]
        assert values == sorted(values), name
        assert values[-1] == totals[name]
        assert [seen[name] for seen in probe.at_epoch_end] == pytest.approx(
            [sum(column(rows, f"{name}_epoch")[: i + 1]) for i in range(EPOCHS)], rel=1e-6
        )
    assert energy.so_far() == {name: totals[name] for name in energy.so_far()}  # after fit: the totals


def test_a_checkpoint_keeps_the_split_and_the_setup(fit):
    energy, _, _, _, _, last = fit
    saved = torch.load(last, weights_only=False)["callbacks"]["EnergyTracker"]
    assert saved["cost_setup"] == energy.cost_setup
    for name in SPLIT:
        assert 0 <= saved["totals"][name] <= energy.totals[name] * (1 + 1e-9)
    restored = energy_tracker()
    restored.load_state_dict(saved)
    summary = restored.summary()
    assert summary["cost_setup"] == energy.summary()["cost_setup"]
    assert sum(summary[name] for name in SPLIT) == pytest.approx(summary["energy_kwh"], rel=1e-9)


def test_a_checkpoint_from_before_the_split_still_loads(tmp_path):
    energy = energy_tracker()
    energy.load_state_dict(
        {"totals": {"energy_kwh": 1e-4, "co2_measured_g": 0.04, "co2_paper_eq_g": 0.02}, "energy_per_rank": [1e-4]}
    )
    summary = energy.summary()
    assert summary["energy_kwh"] == 1e-4 and summary["energy_kwh_per_rank"] == [1e-4]
    assert all(summary[name] is None for name in SPLIT)  # the earlier energy has no split
    assert summary["cost_setup"] == {}
    trainer(tmp_path, [energy], logger=False, max_epochs=1, val_check_interval=None).fit(BoringModel())
    summary = energy.summary()
    assert summary["energy_kwh"] > 1e-4 and all(summary[name] is None for name in SPLIT)
    assert set(summary["cost_setup"]) >= COST_SETUP_KEYS  # read from this session's tracker
    assert energy.state_dict()["split_known"] is False  # and so it stays through another resume


def test_a_resumed_fit_appends_to_emissions_csv(tmp_path):
    class StopAfterFirstEpoch(Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            trainer.should_stop = True

    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, save_top_k=0)
    first = energy_tracker()
    trainer(tmp_path, [first, StopAfterFirstEpoch(), checkpoint], logger=False, enable_checkpointing=True).fit(
        BoringModel()
    )
    assert len(list(csv.DictReader((tmp_path / "emissions.csv").open()))) == 1
    resumed = energy_tracker()
    trainer(tmp_path, [resumed], logger=False).fit(BoringModel(), ckpt_path=str(tmp_path / "checkpoints/last.ckpt"))
    rows = list(csv.DictReader((tmp_path / "emissions.csv").open()))
    assert len(rows) == 2 and rows[0]["run_id"] != rows[1]["run_id"]  # the first session's row is kept
    assert not list(tmp_path.glob("emissions.csv.bak*"))
    assert resumed.totals["energy_kwh"] > first.totals["energy_kwh"] > 0
    assert resumed.cost_setup == first.cost_setup
    assert sum(resumed.totals[name] for name in SPLIT) == pytest.approx(resumed.totals["energy_kwh"], rel=1e-9)
