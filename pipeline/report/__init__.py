"""The run report: one self-contained HTML page per run in output/reports/<run>/."""


class NoReportError(RuntimeError):
    """No report of that run in the output folder."""
