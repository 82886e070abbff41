"""Energy and CO2 of fine-tuning: measured with CodeCarbon, and by the TopicBERT paper's equation."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from callbacks.summary import run_folder
from callbacks.telemetry import TelemetryCallback, gather_over_ranks, reduce_over_ranks
from utils.carbon import paper_co2_g

if TYPE_CHECKING:
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.output_methods.emissions_data import EmissionsData

log = logging.getLogger(__name__)

EMISSIONS_FILE = "emissions.csv"
SPLIT = {"energy_cpu_kwh": "cpu", "energy_gpu_kwh": "gpu", "energy_ram_kwh": "ram"}  # total name: measured name


def nothing_measured() -> dict[str, float]:
    """What CodeCarbon's tasks measured, in its units: kWh, kg CO2 and seconds."""
    return {"energy": 0.0, "emissions": 0.0, "duration": 0.0, "cpu": 0.0, "gpu": 0.0, "ram": 0.0}


def no_totals() -> dict[str, float]:
    return {"energy_kwh": 0.0, "co2_measured_g": 0.0, "co2_paper_eq_g": 0.0} | dict.fromkeys(SPLIT, 0.0)


def _measuring_modes(tracker: OfflineEmissionsTracker) -> tuple[str, float | None, str, str]:
    """How CodeCarbon gets CPU, GPU and RAM energy (from the hardware it set up), and the CPU power
    its CPU estimate scales (None when measured)."""
    from codecarbon.core.gpu import is_nvidia_system
    from codecarbon.external.hardware import CPU, GPU, AppleSiliconChip, Raspberry
    from codecarbon.external.ram import RAM

    cpu, gpu, ram, tdp = "none", "none", "none", None
    for part in tracker._hardware:  # CodeCarbon keeps no public record of its measuring modes
        if isinstance(part, CPU):
            mode = part._mode
            cpu = {
                "intel_rapl": "measured (RAPL)",
                "windows_emi": "measured (Windows Energy Meter Interface)",
                "intel_power_gadget": "measured (Intel Power Gadget)",
                "cpu_load": "estimated (TDP x CPU load)",
                "constant": "estimated (constant share of TDP)",
            }.get(mode, f"CodeCarbon CPU mode {mode}")
            if cpu.startswith("estimated"):
                tdp = float(part._tdp) if part._tdp is not None else None
        elif isinstance(part, GPU):
            gpu = "measured (NVML)" if is_nvidia_system() else "measured (AMD SMI)"
        elif isinstance(part, AppleSiliconChip):
            if part.chip_part == "CPU":
                cpu = "measured (powermetrics)"
            else:
                gpu = "measured (powermetrics)"
        elif isinstance(part, Raspberry):
            if part.chip_part == "CPU":
                cpu = "measured (Raspberry Pi PMIC)"
            else:
                ram = "measured (Raspberry Pi PMIC)"
        elif isinstance(part, RAM):
            if part._force_ram_power is not None:
                ram = f"fixed ({part._force_ram_power} W)"
            else:
                ram = f"estimated (from the {part._tracking_mode}'s memory size)"
    return cpu, tdp, gpu, ram


def _grid_intensity(tracker: OfflineEmissionsTracker, data: EmissionsData) -> float | None:
    """The grid intensity (g CO2 / kWh) CodeCarbon converted energy with: the forced one, else its table's
    value for the country, else what the task's emissions over its energy give."""
    if tracker.force_carbon_intensity_g_co2e_kwh is not None:
        return float(tracker.force_carbon_intensity_g_co2e_kwh)
    try:
        from codecarbon.core.units import Energy

        engine: Any = tracker._emissions  # made by the task that measured data
        if tracker._get_cloud_metadata().is_on_private_infra and not tracker._electricitymaps_api_token:
            return engine.get_private_infra_emissions(Energy.from_energy(kWh=1.0), tracker._geo) * 1000.0
    except Exception:  # CodeCarbon's internals moved: fall back on what it computed
        log.debug("CodeCarbon's grid intensity table is out of reach", exc_info=True)
    return round(data.emissions * 1000.0 / data.energy_consumed, 3) if data.energy_consumed > 0 else None


def cost_setup(tracker: OfflineEmissionsTracker, data: EmissionsData) -> dict[str, Any]:
    """What makes two runs' energy and CO2 comparable, as CodeCarbon set itself up to measure ``data``."""
    cpu, tdp, gpu, ram = _measuring_modes(tracker)
    return {
        "cpu_energy": cpu,
        "gpu_energy": gpu,
        "ram_energy": ram,
        "country_iso_code": data.country_iso_code,
        "grid_intensity_g_per_kwh": _grid_intensity(tracker, data),
        "pue": float(data.pue),
        "tracking_mode": data.tracking_mode,
        "cpu_model": data.cpu_model,
        "cpu_count": data.cpu_count,
        "cpu_tdp_w": tdp,
        "gpu_model": data.gpu_model,
        "gpu_count": data.gpu_count,
        "ram_total_gb": data.ram_total_size,
        "codecarbon_version": data.codecarbon_version,
    }


class EnergyTracker(TelemetryCallback):
    """Per training epoch and in total: ``energy_kwh`` and ``co2_measured_g`` from CodeCarbon's offline
    tracker, next to ``co2_paper_eq_g`` from the paper's equation over the same time window (the
    training epoch including its validation pass: both are part of what fine-tuning costs). The energy
    is also split into ``energy_cpu_kwh``, ``energy_gpu_kwh`` and ``energy_ram_kwh``, and ``cost_setup``
    says how CodeCarbon measured it (modes, grid intensity, PUE, hardware), as read from the tracker
    when it first measured an epoch. The split is None for a run resumed from a checkpoint that
    predates it (its earlier energy has no split).

    CodeCarbon reads GPU energy through NVML, CPU energy from RAPL where the kernel exposes it (else
    it estimates from CPU load and TDP) and RAM energy from its size; every figure includes the PUE.
    Each process measures its own GPU and its share of the CPU, so under DDP the energies are summed
    over processes.

    Global rank 0 also keeps CodeCarbon's own files in the run folder (``run_folder``):

    * ``emissions.csv``: one row per fit session, written when the tracker stops (fit end or a crash),
      with CodeCarbon's cumulative figures since fit start (its ``duration`` too, which CodeCarbon
      alone would restart at every task): besides the epochs it covers the sanity
      check, the time between epochs and the end of fit, so its energy is a little above
      ``energy_kwh``. A resumed run that logs into the same folder appends its row (CodeCarbon appends
      to a file with the same header, and renames one with another header to ``emissions.csv.bak``
      before starting anew). A process killed without a chance to stop the tracker writes no row.
    * ``emissions_epochs_<run id>.csv``: one row per CodeCarbon task of that session: ``epoch<N>``,
      and ``epoch<N>-part<K>`` for the rest of an epoch after a checkpoint or a :meth:`so_far` call.

    Args:
        country_iso_code: country whose grid intensity converts energy to CO2 (ISO 3166 alpha-3).
        grid_intensity_g_per_kwh: a fixed grid intensity that overrides the country's.
        measure_power_secs: sampling interval; short enough for epochs of a few seconds.
        paper_power_kw: power in the paper's equation (a T4: 0.07 kW) per device.
        paper_grid_kg_per_kwh: grid intensity in the paper's equation (0.61 kg CO2 / kWh).
        tracking_mode: ``process`` (this process's share of CPU and RAM) or ``machine``.
        pue: the data centre's power usage effectiveness, which CodeCarbon multiplies all energy by.
    """

    def __init__(
        self,
        country_iso_code: str = "USA",
        grid_intensity_g_per_kwh: float | None = None,
        measure_power_secs: float = 1.0,
        paper_power_kw: float = 0.07,
        paper_grid_kg_per_kwh: float = 0.61,
        tracking_mode: str = "process",
        pue: float = 1.0,
    ):
        self.country_iso_code = country_iso_code
        self.grid_intensity_g_per_kwh = grid_intensity_g_per_kwh
        self.measure_power_secs = measure_power_secs
        self.paper_power_kw = paper_power_kw
        self.paper_grid_kg_per_kwh = paper_grid_kg_per_kwh
        self.tracking_mode = tracking_mode
        self.pue = pue
        self.tracker: OfflineEmissionsTracker | None = None
        self._session_start: float | None = None  # when the tracker started, on CodeCarbon's clock
        self._setup_read = False  # cost_setup read from this session's tracker
        self._epoch_task_open = False
        self._task_epoch, self._task_parts = 0, 0
        self._world_size = 1
        self._earlier_in_epoch = nothing_measured()  # measured by the epoch's earlier tasks
        self.totals = no_totals()
        self.split_known = True  # False after resuming from a checkpoint older than the split
        self.energy_per_rank: list[float] = []
        self.cost_setup: dict[str, Any] = {}

    def _make_tracker(self, trainer):
        from codecarbon import OfflineEmissionsTracker
        from codecarbon.output_methods.base_output import OutputMethod

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its hardware notes are not the user's concern
        device = trainer.strategy.root_device
        folder = run_folder(trainer)  # every rank must ask
        kwargs: dict[str, Any] = {"output_methods": []}
        if trainer.is_global_zero:
            folder.mkdir(parents=True, exist_ok=True)
            kwargs = {"output_methods": [OutputMethod.CSV], "output_dir": str(folder), "on_csv_write": "append"}
        if self.grid_intensity_g_per_kwh is not None:
            kwargs["force_carbon_intensity_g_co2e_kwh"] = self.grid_intensity_g_per_kwh
        return OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            measure_power_secs=self.measure_power_secs,
            tracking_mode=self.tracking_mode,
            gpu_ids=[device.index or 0] if device.type == "cuda" else None,
            output_file=EMISSIONS_FILE,
            pue=self.pue,
            log_level="error",
            allow_multiple_runs=True,
            project_name="topicbert",
            experiment_name="epochs",  # names the file of per-task rows
            **kwargs,
        )

    def on_fit_start(self, trainer, pl_module) -> None:
        self._world_size = trainer.world_size
        self.tracker = self._make_tracker(trainer)
        self.tracker.start()
        self._session_start = self.tracker._start_time
        self._setup_read = False

    def on_train_start(self, trainer, pl_module) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a run resumed mid-epoch gets no epoch start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if not self._epoch_task_open:
            self._task_epoch, self._task_parts = trainer.current_epoch, 0
            self._start_epoch_task()

    def _start_epoch_task(self) -> None:
        assert self.tracker is not None  # made in on_fit_start
        part = f"-part{self._task_parts}" if self._task_parts else ""
        self.tracker.start_task(f"epoch{self._task_epoch}{part}")
        self._task_parts += 1
        self._epoch_task_open = True

    def _stop_epoch_task(self) -> None:
        """Add what the epoch's running task measured to ``_earlier_in_epoch``."""
        assert self.tracker is not None  # made in on_fit_start
        data, part = self.tracker.stop_task(), self._earlier_in_epoch
        self._epoch_task_open = False
        part["energy"] += data.energy_consumed
        part["emissions"] += data.emissions
        part["duration"] += data.duration
        part["cpu"] += data.cpu_energy
        part["gpu"] += data.gpu_energy
        part["ram"] += data.ram_energy
        if not self._setup_read:
            self._read_cost_setup(data)

    def _read_cost_setup(self, data: EmissionsData) -> None:
        assert self.tracker is not None  # made in on_fit_start
        self._setup_read = True
        setup = cost_setup(self.tracker, data)
        if not self.cost_setup:
            self.cost_setup = setup
            return
        changed = sorted(name for name, value in setup.items() if self.cost_setup.get(name) != value)
        if changed:  # a resume elsewhere: results.json keeps the first session's setup
            log.warning("Energy measured differently since the resume, in %s: %s", ", ".join(changed), setup)

    def _figures(self, measured: dict[str, float], devices: int) -> dict[str, float]:
        """``measured`` (CodeCarbon's units) as totals' figures, the paper's equation over ``devices``."""
        hours = measured["duration"] / 3600.0
        return {
            "energy_kwh": measured["energy"],
            "co2_measured_g": measured["emissions"] * 1000.0,
            "co2_paper_eq_g": paper_co2_g(hours, self.paper_power_kw, self.paper_grid_kg_per_kwh, devices),
        } | {total: measured[name] for total, name in SPLIT.items()}

    def _read_running_task(self) -> None:
        """Bring ``_earlier_in_epoch`` up to now: the epoch's task stops, its figures join it and a new
        task goes on measuring, so each part is counted once, at the epoch's end."""
        if self.tracker is not None and self._epoch_task_open:
            self._stop_epoch_task()
            self._start_epoch_task()

    def _totals_so_far(self) -> dict[str, float]:
        """The totals plus the running epoch so far (this process's part of it), also an epoch a
        restored checkpoint stopped in that no training step has closed."""
        self._read_running_task()
        part = self._figures(self._earlier_in_epoch, self._world_size)
        return {name: value + part[name] for name, value in self.totals.items()}

    def so_far(self) -> dict[str, float]:
        """Cumulative ``energy_kwh``, ``co2_measured_g``, ``co2_paper_eq_g`` (and the energy split) up to
        now, the running epoch included; cheap enough for every validation end, and it changes nothing
        that the epochs log. Under DDP the part of the running epoch is this process's only."""
        return self._totals_so_far()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop_epoch_task()
        measured, self._earlier_in_epoch = self._earlier_in_epoch, nothing_measured()
        per_rank = gather_over_ranks(trainer, measured["energy"])
        self.energy_per_rank = [
            a + b for a, b in zip(per_rank, self.energy_per_rank or [0.0] * len(per_rank), strict=True)
        ]
        over_ranks = {"energy": sum(per_rank), "duration": reduce_over_ranks(trainer, measured["duration"], "max")}
        for name in ("emissions", *SPLIT.values()):
            over_ranks[name] = reduce_over_ranks(trainer, measured[name], "sum")
        epoch = self._figures(over_ranks, trainer.world_size)
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
            if self._session_start is not None:
                # every start_task restarts CodeCarbon's clock: without this the row in emissions.csv
                # would hold the fit's energy over the last epoch's duration
                self.tracker._start_time = self._session_start
            self.tracker.stop()
            self.tracker = None
            self._epoch_task_open = False

    def progress(self) -> dict[str, float]:
        return self.so_far()

    def summary(self) -> dict:
        totals = self._totals_so_far()
        split = {name: totals[name] if self.split_known else None for name in SPLIT}
        return (
            {name: totals[name] for name in ("energy_kwh", "co2_measured_g", "co2_paper_eq_g")}
            | {"energy_kwh_per_rank": list(self.energy_per_rank)}
            | split
            | {"cost_setup": dict(self.cost_setup)}
        )

    def state_dict(self) -> dict:
        """The totals of the ended epochs and what the running epoch measured so far, which a run
        resumed inside that epoch adds to it, so the epoch's figures are whole (under DDP the
        part-epoch figure is this process's: checkpoints hold rank 0's callback states)."""
        self._read_running_task()
        return {
            "totals": dict(self.totals),
            "in_epoch": dict(self._earlier_in_epoch),
            "energy_per_rank": self.energy_per_rank,
            "split_known": self.split_known,
            "cost_setup": dict(self.cost_setup),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("totals", self.totals)
        self.totals = no_totals() | saved
        # older checkpoints folded the running epoch's part into their totals
        self._earlier_in_epoch = nothing_measured() | state_dict.get("in_epoch", {})
        # a checkpoint from before the split: its energy has no split, so the run's split is unknown
        self.split_known = state_dict.get(
            "split_known", all(name in saved for name in SPLIT) or not saved.get("energy_kwh")
        )
        self.energy_per_rank = list(state_dict.get("energy_per_rank", []))
        self.cost_setup = dict(state_dict.get("cost_setup", {}))
