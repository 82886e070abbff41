import json

import numpy as np
import pytest

from datamodules.teacher import TeacherLogits
from reports.report import report
from reports.teacher_cost import teacher_cost, with_all_in_cost

TEACHER = {
    "dataset": "r8",
    "model": "TopicBERT-256",
    "seed": 2,
    "status": "complete",
    "test_macro_f1": 0.95,
    "time_total_s": 800.0,
    "co2_measured_g": 1.6,
    "best_val_macro_f1": 0.96661,
    "best_checkpoint": "runs/TopicBERT-256/seed2/checkpoints/epoch1-val_macro_f10.9666.ckpt",
    "data_report": {"train": {"documents": 10}},
}


def student(model, seed, f1, time_s, co2_g, distilled, dataset="r8"):
    split = "transfer" if distilled else "train"
    return {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "status": "complete",
        "test_macro_f1": f1,
        "time_total_s": time_s,
        "co2_measured_g": co2_g,
        "data_report": {split: {"documents": 40 if distilled else 10}},
    }


def write_logits(path, labelling_time_s=200.0, dev=0.966609001159668, checkpoint="epoch1-val_macro_f10.9666.ckpt"):
    teacher = {"model": "TopicBERT-256", "checkpoint": checkpoint, "dev_macro_f1": dev}
    if labelling_time_s is not None:
        teacher["labelling_time_s"] = labelling_time_s
    TeacherLogits(["a"], np.zeros((1, 2)), ["x", "y"], False, "transfer", "f", teacher).save(path)
    return path


def test_a_distilled_student_pays_its_teachers_fit_and_labelling(tmp_path):
    logits = write_logits(tmp_path / "logits.npz")
    runs = [
        TEACHER,
        student("KD-LogReg", 1, 0.9, 20.0, 0.04, distilled=True),
        student("LogReg", 1, 0.88, 15.0, 0.03, distilled=False),
        student("KD-LogReg", 1, 0.7, 20.0, 0.04, distilled=True, dataset="20ng"),
    ]
    cost = teacher_cost(logits, runs)
    assert (cost.fit_time_s, cost.labelling_time_s, cost.time_s) == (800.0, 200.0, 1000.0)
    assert cost.co2_g == pytest.approx(1.6 + 1.6 / 800 * 200)  # labelling at the fit's g/s
    teacher, kd, plain, other = with_all_in_cost(runs, cost)
    assert kd["time_all_in_s"] == 1020.0 and kd["co2_all_in_g"] == pytest.approx(0.04 + 2.0)
    assert (plain["time_all_in_s"], plain["co2_all_in_g"]) == (15.0, 0.03)
    assert (teacher["time_all_in_s"], teacher["co2_all_in_g"]) == (800.0, 1.6)  # its own fit, no labelling
    assert "time_all_in_s" not in other  # another dataset's teacher
    assert "time_all_in_s" not in runs[1]  # the loaded results stay as read


def test_logits_without_a_labelling_time_count_the_fit_and_say_it_is_an_underestimate(tmp_path):
    cost = teacher_cost(write_logits(tmp_path / "old.npz", labelling_time_s=None), [TEACHER])
    assert cost.time_s == 800.0 and cost.co2_g == 1.6
    assert "an underestimate" in cost.note()
    assert "200 s" in teacher_cost(write_logits(tmp_path / "new.npz"), [TEACHER]).note()


@pytest.mark.parametrize("logits", [{"dev": 0.95}, {"checkpoint": "epoch0-val_macro_f10.9666.ckpt"}])
def test_the_teacher_must_be_among_the_runs_by_checkpoint_and_dev_score(tmp_path, logits):
    with pytest.raises(SystemExit, match="add the teacher's run folder"):
        teacher_cost(write_logits(tmp_path / "logits.npz", **logits), [TEACHER])


def test_report_with_the_teachers_logits_draws_the_all_in_fronts(tmp_path):
    runs = [
        TEACHER,
        student("KD-KimCNN", 1, 0.93, 300.0, 0.5, distilled=True),
        student("KD-KimCNN", 2, 0.94, 320.0, 0.6, distilled=True),
        student("KimCNN", 1, 0.91, 310.0, 0.5, distilled=False),
    ]
    for i, run in enumerate(runs):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "results.json").write_text(json.dumps(run))
    out = tmp_path / "out"
    rows = report(
        [str(tmp_path)],
        baseline="TopicBERT-256",
        out=str(out),
        teacher_logits=str(write_logits(tmp_path / "logits.npz")),
        wandb_mode="disabled",
    )
    by_model = {row.model: row for row in rows}
    assert by_model["KD-KimCNN"].time_all_in_s == pytest.approx(310.0 + 1000.0)
    assert by_model["KimCNN"].time_all_in_s == 310.0
    table = (out / "table3.md").read_text()
    assert "| 1310 | 2.55 |" in table and "teacher's (TopicBERT-256) fit (800 s, 1.6 g)" in table
    for name in ("pareto_all_in_time_r8.png", "pareto_all_in_co2_r8.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report([str(tmp_path)], baseline="TopicBERT-256", out=str(tmp_path / "plain"), wandb_mode="disabled")
    assert not (tmp_path / "plain" / "pareto_all_in_time_r8.png").exists()  # drawn only with the teacher's logits
