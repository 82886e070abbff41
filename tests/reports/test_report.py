import csv
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from reports.plots import pareto_plot, place_labels, x_scale
from reports.report import report
from reports.table import comparability_warnings, load_results, model_order, pareto_front, summarize, to_markdown
from utils.predictions import DocumentPredictions


def result(model, seed, f1, time_s, co2_g, dataset="r8", status="complete", micro=None):
    return {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "test_macro_f1": f1,
        "time_epoch_mean_s": time_s / 2,
        "time_total_s": time_s,
        "co2_measured_g": co2_g,
        "co2_paper_eq_g": 2 * co2_g,
        "energy_kwh": co2_g / 400,
        "status": status,
        **({"test_micro_f1": micro} if micro is not None else {}),
    }


HAND_MADE = [
    result("BERT-512", 1, 0.90, 100, 10),
    result("BERT-512", 2, 0.92, 110, 11),
    result("TopicBERT-512", 1, 0.93, 120, 12, micro=0.96),
    result("TopicBERT-512", 2, 0.95, 120, 12, micro=0.98),
    result("TopicBERT-128", 1, 0.90, 60, 6),
    result("TopicBERT-128", 2, 0.90, 60, 6),
    result("TopicBERT-64", 1, 0.89, 80, 8),
]


def test_pareto_front_keeps_only_undominated_points():
    costs = [100, 120, 60, 80, 60]
    scores = [0.91, 0.94, 0.90, 0.89, 0.85]
    # (60, 0.90) beats (60, 0.85) and (80, 0.89); (100, 0.91) and (120, 0.94) each buy more F1
    assert pareto_front(costs, scores) == [2, 0, 1]
    assert pareto_front([1.0], [0.5]) == [0]
    assert pareto_front([5, 5], [0.7, 0.7]) == [0]  # a tie is not an improvement


def test_costs_spanning_orders_of_magnitude_get_a_log_axis():
    assert x_scale([3.0, 20.0, 4000.0]) == "log"
    assert x_scale([957.0, 1082.0]) == "linear"
    assert x_scale([0.0, 4000.0]) == "linear"  # a zero cost has no place on a log axis


def test_table3_means_std_and_retention():
    rows = summarize(HAND_MADE, baseline="BERT-512")
    assert [r.model for r in rows] == ["BERT-512", "TopicBERT-512", "TopicBERT-128", "TopicBERT-64"]
    bert, topic512, topic128, topic64 = rows
    assert bert.f1_mean == pytest.approx(0.91) and bert.f1_std == pytest.approx(0.014142, abs=1e-5)
    assert topic512.retention == pytest.approx(0.94 / 0.91)
    assert bert.retention == pytest.approx(1.0)
    assert topic128.time_total_s == 60 and topic128.co2_paper_eq_g == 12
    assert topic64.seeds == 1 and topic64.f1_std == 0.0
    table = to_markdown(rows)
    assert "| 0.940 ± 0.014 | 0.970 ± 0.014 | - | - | 103.30% |" in table  # no predictions saved: no interval
    assert "| r8 | TopicBERT-64 | 1 | - | - | - | - | - | - | - | 0.890 ± 0.000 | - | - | - | 97.80% |" in table


def test_model_order_is_the_papers():
    names = ["TopicBERT-64", "TopicBERT-512", "BERT-512", "TopicBERT-256", "TopicBERT-128"]
    assert sorted(names, key=model_order) == [
        "BERT-512",
        "TopicBERT-512",
        "TopicBERT-256",
        "TopicBERT-128",
        "TopicBERT-64",
    ]


def test_load_results_skips_unfinished_and_broken_files(tmp_path):
    for i, status in enumerate(["complete", "fit", "complete"]):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(result("BERT-512", i, 0.9, 10, 1, status=status)))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    assert sorted(r["seed"] for r in load_results([tmp_path])) == [0, 2]


def test_report_writes_table_csv_and_both_pareto_plots(tmp_path):
    for i, r in enumerate(HAND_MADE):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "results.json").write_text(json.dumps(r))
    rows = report([str(tmp_path)], baseline="BERT-512", out=str(tmp_path / "out"), wandb_mode="disabled")
    assert len(rows) == 4
    out = tmp_path / "out"
    assert (out / "table3.md").read_text().startswith("| dataset | model |")
    with (out / "table3.csv").open() as f:
        assert next(csv.DictReader(f))["model"] == "BERT-512"
    for name in ("pareto_time_r8.png", "pareto_co2_r8.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_multi_label_dataset_gets_micro_f1_fronts_beside_its_macro_ones(tmp_path):
    reuters = [
        {**result(model, seed, f1, t, 1, dataset="reuters21578", micro=micro), "hparams": {"multi_label": True}}
        for model, seed, f1, t, micro in [("KimCNN", 1, 0.40, 50, 0.80), ("KimCNN", 2, 0.42, 52, 0.84)]
    ]
    for i, r in enumerate([*HAND_MADE, *reuters]):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "results.json").write_text(json.dumps(r))
    rows = report([str(tmp_path)], out=str(tmp_path / "out"), wandb_mode="disabled")
    kimcnn = next(r for r in rows if r.model == "KimCNN")
    assert kimcnn.micro_f1_mean == pytest.approx(0.82) and kimcnn.micro_f1_std == pytest.approx(0.028284, abs=1e-6)
    pngs = {p.name for p in (tmp_path / "out").glob("*.png")}
    assert {"pareto_micro_time_reuters21578.png", "pareto_time_reuters21578.png", "pareto_time_r8.png"} <= pngs
    assert not any(name.startswith("pareto_micro_") and name.endswith("_r8.png") for name in pngs)  # single-label


def test_names_of_models_close_together_are_placed_apart_and_inside_the_axes():
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    xs, ys = [174.0, 184.0, 800.0, 2300.0], [0.921, 0.919, 0.954, 0.943]
    ax.scatter(xs, ys)
    ax.set_xscale("log")  # limits left to autoscaling, which settles them only when drawn
    texts = place_labels(ax, ["BERT-Avg+DTR", "BERT-Avg", "TopicBERT-256", "KD-BiLSTM"], xs, ys)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    frame = ax.get_window_extent(renderer)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    assert texts[3].get_horizontalalignment() == "right"  # the right-most name turns back into the axes
    plt.close(fig)


def test_report_logs_an_offline_wandb_run(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(HAND_MADE[0]))
    report([str(tmp_path)], out=str(tmp_path / "out"), wandb_mode="offline")
    (run_dir,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    # the media files are written by this process when logged; the .wandb log is flushed by W&B's service later
    (table_file,) = (run_dir / "files" / "media" / "table").glob("table3_*.table.json")
    table = json.loads(table_file.read_text())
    assert {"model", "f1_mean", "time_total_s", "co2_measured_g"} <= set(table["columns"])
    assert [row[table["columns"].index("model")] for row in table["data"]] == ["BERT-512"]
    images = sorted(p.name.split("_0_")[0] for p in (run_dir / "files" / "media" / "images").glob("*.png"))
    assert images == ["figure_pareto_co2_r8", "figure_pareto_time_r8"]


def test_a_note_given_to_the_report_is_printed_under_its_table(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(HAND_MADE[0]))
    note = "LogReg ran on another host, about 1.5x faster."
    report([str(tmp_path)], out=str(tmp_path / "out"), note=[note], wandb_mode="disabled")
    lines = (tmp_path / "out" / "table3.md").read_text().splitlines()
    assert note in lines and lines.index(note) > max(i for i, line in enumerate(lines) if line.startswith("| r8 |"))


def test_report_without_finished_runs_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no finished runs"):
        report([str(tmp_path)], wandb_mode="disabled")


def test_runs_without_a_cost_show_a_dash_and_stay_off_that_plot(tmp_path):
    svm = {
        "dataset": "r8",
        "model": "SVM (tf-idf)",
        "seed": 1,
        "test_macro_f1": 0.93,
        "time_total_s": 4.0,
        "status": "complete",
    }
    for i, r in enumerate([*HAND_MADE, svm]):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "results.json").write_text(json.dumps(r))
    report([str(tmp_path)], out=str(tmp_path / "out"), wandb_mode="disabled")
    line = next(x for x in (tmp_path / "out" / "table3.md").read_text().splitlines() if "SVM" in x)
    # T measured; no T_epoch, CO2, energy, nor all-in costs (no teacher given)
    assert line.endswith("| - | 4 | - | - | - | - | - | - | - |")
    assert (tmp_path / "out" / "pareto_co2_r8.png").is_file()
    rows = summarize([svm])
    assert pareto_plot(rows, [svm], "co2_measured_g", "CO2", tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    assert pareto_plot(rows, [svm], "time_total_s", "T", tmp_path / "t.png") == tmp_path / "t.png"


def write_run(folder, model, seed, predicted, gold, **fields):
    """A finished run with its test decisions saved, as RunSummary writes them."""
    folder.mkdir(parents=True)
    eye = np.eye(3, dtype=bool)
    decisions = DocumentPredictions([f"d{i}" for i in range(len(gold))], eye[gold], eye[predicted], list("abc"), False)
    decisions.save(folder / "test_predictions.npz")
    base = {"dataset": "r8", "model": model, "seed": seed, "status": "complete"}
    base |= {"test_predictions": "test_predictions.npz", "test_macro_f1": decisions.macro_f1()}
    base |= {"micro": float(np.mean(gold == predicted))}  # the accuracy, to check micro-F1 against
    (folder / "results.json").write_text(json.dumps(base | fields))


SEEDS = (1, 2, 3)


def test_rows_get_a_paired_interval_against_the_baseline_and_the_better_arm_is_significant(tmp_path):
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 600)
    for seed in SEEDS:
        noisy = np.where(rng.random(600) < 0.5, rng.integers(0, 3, 600), gold)  # about 67% right
        write_run(tmp_path / f"weak{seed}", "Weak", seed, noisy, gold, budget="steps=100,evaluations=10")
        nearly = np.where(rng.random(600) < 0.05, rng.integers(0, 3, 600), gold)  # about 97% right
        write_run(tmp_path / f"strong{seed}", "Strong", seed, nearly, gold, budget="steps=100,evaluations=10")
    results = load_results([tmp_path])
    rows = {r.model: r for r in summarize(results, baseline="Weak")}
    strong = rows["Strong"]
    assert strong.difference == pytest.approx(strong.f1_mean - rows["Weak"].f1_mean)
    assert 0 < strong.difference_low < strong.difference < strong.difference_high and strong.significant
    assert strong.retention_low < strong.retention < strong.retention_high
    assert rows["Weak"].difference is None and strong.budget == "steps=100,evaluations=10"
    # single-label micro-F1 is accuracy: its paired difference is the accuracy gap, with its own interval
    accuracy = {name: np.mean([r["micro"] for r in results if r["model"] == name]) for name in ("Weak", "Strong")}
    assert strong.micro_difference == pytest.approx(accuracy["Strong"] - accuracy["Weak"])
    assert 0 < strong.micro_difference_low < strong.micro_difference < strong.micro_difference_high
    assert strong.micro_significant and rows["Weak"].micro_difference is None
    assert " *" in to_markdown(list(rows.values()))


def test_a_run_whose_predictions_file_is_gone_leaves_its_rows_without_an_interval(tmp_path, caplog):
    """A study kept without its per-document predictions still gives mean ± std, never a stale interval."""
    gold = np.arange(60) % 3
    for seed in SEEDS:
        write_run(tmp_path / f"base{seed}", "Base", seed, gold, gold)
        write_run(tmp_path / f"arm{seed}", "Arm", seed, np.roll(gold, seed), gold)
    (tmp_path / "base2" / "test_predictions.npz").unlink()
    with caplog.at_level("WARNING"):
        rows = {r.model: r for r in summarize(load_results([tmp_path]), baseline="Base")}
    assert rows["Arm"].difference is None and rows["Arm"].micro_difference is None
    assert rows["Arm"].f1_mean < rows["Base"].f1_mean == pytest.approx(1.0) and rows["Arm"].seeds == 3
    assert any("Base seed 2: no test predictions" in r.message for r in caplog.records)


def test_report_warns_in_the_table_and_on_the_console_when_budgets_or_dev_splits_differ(tmp_path, caplog):
    gold = np.arange(30) % 3
    write_run(tmp_path / "a", "LogReg", 1, gold, gold, budget="epochs=20", dev_fingerprint="aaaa")
    write_run(tmp_path / "b", "KD-LogReg", 1, gold, gold, budget="epochs=8", dev_fingerprint="aaaa")
    write_run(tmp_path / "c", "SVM (tf-idf)", 1, gold, gold, dev_fingerprint="bbbb")
    with caplog.at_level("WARNING"):
        report([str(tmp_path)], baseline="LogReg", out=str(tmp_path / "out"), wandb_mode="disabled")
    table = (tmp_path / "out" / "table3.md").read_text()
    assert "> **Warning:** r8: rows differ in training budget" in table
    assert "(epochs=20: LogReg; epochs=8: KD-LogReg)" in table
    assert "rows differ in dev split" in table and "(aaaa: KD-LogReg, LogReg; bbbb: SVM (tf-idf))" in table
    assert "cost set-up" not in table  # no row recorded one
    assert sum("rows differ" in r.message for r in caplog.records) == 2


def test_runs_timed_on_machines_of_different_speed_are_flagged():
    fast, slow = {"machine_fp32_tflops": 0.16}, {"machine_fp32_tflops": 0.10}
    results = [result("A", 1, 0.9, 1, 1) | fast, result("A", 2, 0.9, 1, 1) | slow, result("B", 1, 0.8, 1, 1) | fast]
    (warning,) = comparability_warnings(results)
    assert "1.60x apart" in warning and "A: 100-160 GFLOP/s" in warning and "B: 160-160 GFLOP/s" in warning
    results[1] = results[1] | {"machine_fp32_tflops": 0.12}  # 1.33x: within the spread of one machine
    assert comparability_warnings(results) == []
    assert comparability_warnings([result("A", 1, 0.9, 1, 1), result("B", 1, 0.9, 1, 1) | slow]) == []
    # a run resumed on a slower host: its parts' readings count, not only the last one's
    resumed = fast | {"machine_fp32_tflops_segments": [0.10, 0.16]}
    (warning,) = comparability_warnings([result("A", 1, 0.9, 1, 1) | resumed, result("B", 1, 0.9, 1, 1) | fast])
    assert "1.60x apart" in warning and "A: 100-160 GFLOP/s" in warning


def test_runs_timed_on_different_processors_are_flagged_whatever_the_probe_reads():
    xeon, epyc = {"hardware": "2 CPU cores (Xeon)"}, {"hardware": "2 CPU cores (EPYC)"}
    probe = {"machine_fp32_tflops": 0.17}  # one reading: the speed check stays silent
    results = [result("A", 1, 0.9, 1, 1) | xeon | probe, result("A", 2, 0.9, 1, 1) | epyc | probe]
    (warning,) = comparability_warnings([*results, result("B", 1, 0.8, 1, 1) | epyc])
    assert (
        "different processors" in warning
        and "A: 2 CPU cores (EPYC) + 2 CPU cores (Xeon); B: 2 CPU cores (EPYC)" in warning
    )
    assert comparability_warnings([result("A", 1, 0.9, 1, 1) | epyc, result("B", 1, 0.8, 1, 1) | epyc | probe]) == []
    assert comparability_warnings([result("A", 1, 0.9, 1, 1) | epyc, result("SVM", 1, 0.8, 1, 1)]) == []  # none named


def test_runs_timed_on_different_machines_are_flagged_by_their_ids():
    first, second = {"machine_ids": ["aaa"]}, {"machine_ids": ["bbb"]}
    results = [result("A", 1, 0.9, 1, 1) | first, result("B", 1, 0.8, 1, 1) | second, result("C", 1, 0.8, 1, 1)]
    (warning,) = comparability_warnings(results)
    assert "timed on 2 machines" in warning and "(A: aaa; B: bbb)" in warning  # C recorded none
    resumed = {"machine_ids": ["aaa", "bbb"]}  # a run stopped on one machine and resumed on another
    (warning,) = comparability_warnings([result("A", 1, 0.9, 1, 1) | resumed])
    assert "(A: aaa, bbb)" in warning
    assert comparability_warnings([result("A", 1, 0.9, 1, 1) | first, result("B", 1, 0.8, 1, 1) | first]) == []


def test_equal_budgets_and_splits_give_no_warning():
    same = {"budget": "steps=10,evaluations=2", "dev_fingerprint": "x", "cost_setup": {"pue": 1.0}}
    results = [result("A", 1, 0.9, 1, 1) | same, result("B", 1, 0.8, 1, 1) | same, result("C", 1, 0.8, 1, 1)]
    assert comparability_warnings(results) == []
    results[1] = results[1] | {"cost_setup": {"pue": 1.5}}
    (warning,) = comparability_warnings(results)
    assert "cost set-up" in warning and '"pue": 1.5' in warning
    results[1] = results[1] | {"cost_setup": {"pue": 1.0, "ram_total_gb": 23.5402}}
    results[0] = results[0] | {"cost_setup": {"pue": 1.0, "ram_total_gb": 23.5401}}  # one kind of host
    assert comparability_warnings(results) == []
