"""Refitting a run folder that an interrupted attempt left behind."""

import json

from reports.runs import is_finished, run_fit


def test_a_refit_clears_what_an_unfinished_attempt_left(tmp_path):
    folder = tmp_path / "study/arm/seed1"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints/best.ckpt").write_bytes(b"stale")
    (folder / "emissions.csv").write_text("timestamp,duration\n2026-12-01,1.5\n")
    (folder / "results.json").write_text(json.dumps({"status": "failed", "optimizer_steps": 5}))
    assert not is_finished(folder)

    code, _ = run_fit(folder, [str(tmp_path / "missing.yaml")], [])

    assert code != 0  # the config does not exist: cli.py refuses before fitting
    assert not (folder / "checkpoints").exists() and not (folder / "emissions.csv").exists()
    assert not (folder / "results.json").exists()
    assert "missing.yaml" in folder.with_name("seed1.log").read_text()
