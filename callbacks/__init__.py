"""Cross-cutting callbacks (measurement, writers) and file helpers.

Import from the submodules, e.g. ``callbacks.prediction_writer.PredictionWriter``.
"""
