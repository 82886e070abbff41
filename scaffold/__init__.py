"""What the CLI sets up around every run: run folders, loggers, telemetry, checkpoints, and the
one-line errors. Sits above every other package except ``reports``; imported by ``cli.py``."""
