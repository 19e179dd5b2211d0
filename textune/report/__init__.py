"""Run reports: what a training run did, as report.html (self-contained), report.md and PNG plots in its folder.

Example:
    >>> from textune.report import write_report
    >>> files = write_report("experiments/")      # rebuilds the report of an existing run
    >>> files["report"]
    PosixPath('experiments/report.html')
"""

from .build import ReportData, collect_report_data, report_after_training, write_report
from .plots import PLOTS, register_plot

__all__ = ["PLOTS", "ReportData", "collect_report_data", "register_plot", "report_after_training", "write_report"]
