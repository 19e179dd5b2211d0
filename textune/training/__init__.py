"""The one training flow (`train.train`), its arguments, and what it relies on: Trainer, checkpoints, hardware.

Nothing is imported here, so `textune.training.hardware` and the like stay light for the CLI's fast paths.
"""
