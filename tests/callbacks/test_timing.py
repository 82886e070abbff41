"""EpochTimer's total across the parts of a resumed run."""

from callbacks.timing import EpochTimer


def test_a_resume_with_no_steps_left_keeps_the_stopped_parts_time():
    """A run stopped after its last step is resumed only to be tested: Lightning skips the training
    loop (no ``on_train_start``), and the total must still be the stopped part's, not None."""
    assert EpochTimer().summary()["time_total_s"] is None  # nothing ran yet
    timer = EpochTimer()
    saved = {**EpochTimer().state_dict(), "elapsed_s": 4919.2, "speeds": [0.15, 0.17], "machines": ["a1", "b2"]}
    timer.load_state_dict(saved)
    summary = timer.summary()
    assert summary["machine_ids"] == ["a1", "b2"]
    assert summary["time_total_s"] == 4919.2 and summary["machine_fp32_tflops_segments"] == [0.15, 0.17]
    assert summary["machine_fp32_tflops"] == 0.17  # the last part that trained
