"""The one exception type for problems a user can fix: bad input, missing files, wrong flags."""


class TextuneError(Exception):
    """A user-fixable problem. The CLI prints its message as one line and exits with status 2.

    The message names the problem and the fix (the file, the column, the flag).
    """


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; `--resume` continues from it."""

    def __init__(self, signum: int, checkpoint: str | None):
        import signal

        self.exit_code = 128 + signum
        self.checkpoint = checkpoint
        where = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint could be saved"
        super().__init__(f"training interrupted by {signal.Signals(signum).name}; {where}; "
                         "run the same command with --resume to continue")
