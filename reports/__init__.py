"""Commands that turn runs into the paper's tables and figures: report, sweep and the sequence-length cost."""
