"""Energy and CO2 of fine-tuning: measured with CodeCarbon, and by the TopicBERT paper's equation."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from callbacks.telemetry import TelemetryCallback, gather_over_ranks, reduce_over_ranks
from utils.carbon import paper_co2_g

if TYPE_CHECKING:
    from codecarbon import OfflineEmissionsTracker

log = logging.getLogger(__name__)


def nothing_measured() -> dict[str, float]:
    return {"energy": 0.0, "emissions": 0.0, "duration": 0.0}


class EnergyTracker(TelemetryCallback):
    """Per training epoch and in total: ``energy_kwh`` and ``co2_measured_g`` from CodeCarbon's offline
    tracker, next to ``co2_paper_eq_g`` from the paper's equation over the same time window (the
    training epoch including its validation pass: both are part of what fine-tuning costs).

    CodeCarbon reads GPU energy through NVML, CPU energy from RAPL where the kernel exposes it (else
    it estimates from CPU load and TDP) and RAM energy from its size. Each process measures its own
    GPU and its share of the CPU, so under DDP the energies are summed over processes.

    Args:
        country_iso_code: country whose grid intensity converts energy to CO2 (ISO 3166 alpha-3).
        grid_intensity_g_per_kwh: a fixed grid intensity that overrides the country's.
        measure_power_secs: sampling interval; short enough for epochs of a few seconds.
        paper_power_kw: power in the paper's equation (a T4: 0.07 kW) per device.
        paper_grid_kg_per_kwh: grid intensity in the paper's equation (0.61 kg CO2 / kWh).
        tracking_mode: ``process`` (this process's share of CPU and RAM) or ``machine``.
    """

    def __init__(
        self,
        country_iso_code: str = "USA",
        grid_intensity_g_per_kwh: float | None = None,
        measure_power_secs: float = 1.0,
        paper_power_kw: float = 0.07,
        paper_grid_kg_per_kwh: float = 0.61,
        tracking_mode: str = "process",
    ):
        self.country_iso_code = country_iso_code
        self.grid_intensity_g_per_kwh = grid_intensity_g_per_kwh
        self.measure_power_secs = measure_power_secs
        self.paper_power_kw = paper_power_kw
        self.paper_grid_kg_per_kwh = paper_grid_kg_per_kwh
        self.tracking_mode = tracking_mode
        self.tracker: OfflineEmissionsTracker | None = None
        self._epoch_task_open = False
        self._earlier_in_epoch = nothing_measured()  # measured before a checkpoint
        self.totals = {"energy_kwh": 0.0, "co2_measured_g": 0.0, "co2_paper_eq_g": 0.0}
        self.energy_per_rank: list[float] = []

    def _make_tracker(self, trainer):
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its hardware notes are not the user's concern
        device = trainer.strategy.root_device
        kwargs = {}
        if self.grid_intensity_g_per_kwh is not None:
            kwargs["force_carbon_intensity_g_co2e_kwh"] = self.grid_intensity_g_per_kwh
        return OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            measure_power_secs=self.measure_power_secs,
            tracking_mode=self.tracking_mode,
            gpu_ids=[device.index or 0] if device.type == "cuda" else None,
            save_to_file=False,
            log_level="error",
            allow_multiple_runs=True,
            project_name="topicbert",
            **kwargs,
        )

    def on_fit_start(self, trainer, pl_module) -> None:
        self.tracker = self._make_tracker(trainer)
        self.tracker.start()

    def on_train_start(self, trainer, pl_module) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a run resumed mid-epoch gets no epoch start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if not self._epoch_task_open:
            assert self.tracker is not None  # made in on_fit_start
            self.tracker.start_task(f"epoch{trainer.current_epoch}")
            self._epoch_task_open = True

    def _stop_epoch_task(self) -> None:
        """Add what the epoch's running task measured to ``_earlier_in_epoch``."""
        assert self.tracker is not None  # made in on_fit_start
        data, part = self.tracker.stop_task(), self._earlier_in_epoch
        part["energy"] += data.energy_consumed
        part["emissions"] += data.emissions
        part["duration"] += data.duration

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop_epoch_task()
        self._epoch_task_open = False
        measured, self._earlier_in_epoch = self._earlier_in_epoch, nothing_measured()
        hours = reduce_over_ranks(trainer, measured["duration"], "max") / 3600.0
        per_rank = gather_over_ranks(trainer, measured["energy"])
        self.energy_per_rank = [
            a + b for a, b in zip(per_rank, self.energy_per_rank or [0.0] * len(per_rank), strict=True)
        ]
        epoch = {
            "energy_kwh": sum(per_rank),
            "co2_measured_g": reduce_over_ranks(trainer, measured["emissions"] * 1000.0, "sum"),
            "co2_paper_eq_g": paper_co2_g(hours, self.paper_power_kw, self.paper_grid_kg_per_kwh, trainer.world_size),
        }
        for name, value in epoch.items():
            self.totals[name] += value
            pl_module.log(f"{name}_epoch", value, rank_zero_only=True)
            pl_module.log(f"{name}_total", self.totals[name], rank_zero_only=True)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._stop()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.tracker is not None:
            self.tracker.stop()
            self.tracker = None
            self._epoch_task_open = False

    def summary(self) -> dict:
        return self.totals | {"energy_kwh_per_rank": list(self.energy_per_rank)}

    def state_dict(self) -> dict:
        """The totals including the epoch so far, so a run resumed mid-epoch loses none of it (under
        DDP the part-epoch figure is this process's: checkpoints hold rank 0's callback states)."""
        if self.tracker is None or not self._epoch_task_open:
            return {"totals": dict(self.totals), "energy_per_rank": self.energy_per_rank}
        self._stop_epoch_task()
        self.tracker.start_task("epoch-continued")
        part = self._earlier_in_epoch
        totals = {
            "energy_kwh": self.totals["energy_kwh"] + part["energy"],
            "co2_measured_g": self.totals["co2_measured_g"] + part["emissions"] * 1000.0,
            "co2_paper_eq_g": self.totals["co2_paper_eq_g"]
            + paper_co2_g(part["duration"] / 3600.0, self.paper_power_kw, self.paper_grid_kg_per_kwh),
        }
        return {"totals": totals, "energy_per_rank": self.energy_per_rank}

    def load_state_dict(self, state_dict: dict) -> None:
        self.totals = dict(state_dict.get("totals", self.totals))
        self.energy_per_rank = list(state_dict.get("energy_per_rank", []))
