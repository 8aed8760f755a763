"""Airflow's entry point: the recsys pipeline as a DAG (pipeline/airflow_runner.py).

Point Airflow's dags_folder here (`make airflow` does). Settings come from the environment:
RECSYS_CONFIG (a YAML file of settings), RECSYS_DATA, RECSYS_OUTPUT, RECSYS_SCHEDULE (a cron
expression or preset, default @daily; "none" for runs started by hand only).
"""

import os

from pipeline.cli import tensorflow_environment

tensorflow_environment()  # before the pipeline's modules import TensorFlow

from pipeline.airflow_runner import DEFAULT_SCHEDULE, create_dag  # noqa: E402
from pipeline.config import load_config  # noqa: E402

_schedule = os.environ.get("RECSYS_SCHEDULE", DEFAULT_SCHEDULE)
DAG = create_dag(
    load_config(os.environ.get("RECSYS_CONFIG"), data_dir=os.environ.get("RECSYS_DATA"),
                output_dir=os.environ.get("RECSYS_OUTPUT")),
    schedule=None if _schedule.lower() == "none" else _schedule)
