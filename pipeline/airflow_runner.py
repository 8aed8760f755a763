"""The pipeline as an Airflow DAG: TFX's AirflowDagRunner on the same create_pipeline() as
locally, one task per component, between the two steps the local runner takes around it.

    check_new_data >> [ExampleGen ... Pusher] >> record_run >> give_back_lease

check_new_data validates the raw folders (bad data fails the run before any component), catches
up on spans that arrived since the last run (ExampleGen alone, as locally), and skips the rest
of the run when nothing changed since the last completed one. record_run writes last_run.json,
so `recsys run`, `recommend` and `history` see Airflow's runs as their own. From check_new_data
to give_back_lease (run whatever became of the tasks between) the DAG run holds the output
folder by a lease: a `recsys run` or `recsys rollback` meanwhile is refused (pipeline/lock.py).
"""

import dataclasses
import datetime
import os

from pipeline.config import PipelineConfig
from pipeline.fingerprint import schema_snapshot, source_fingerprint
from pipeline.pipeline import create_pipeline

DEFAULT_SCHEDULE = "@daily"
CHECK_TASK = "check_new_data"
RECORD_TASK = "record_run"
RELEASE_TASK = "give_back_lease"
RUN_KEY = "run_key"  # the XCom check_new_data hands to record_run


def _legacy_inputs_driver():
    """TFX's legacy driver (Airflow's launcher) with inputs it can record and read.

    - Live artifacts only: with a window of several spans, Transform writes one transformed
      Examples artifact per span, and the legacy launcher also leaves an empty placeholder
      among its outputs (state unknown, no splits) that would fail the Trainer.
    - Each artifact under one input only: its metadata allows one input event per artifact
      and execution. A rerun on cached statistics resolves the previous statistics to the
      current ones; drift against itself is nil, so the duplicate is dropped.
    """
    from ml_metadata.proto import metadata_store_pb2
    from tfx.dsl.components.base import base_driver

    class LegacyInputsDriver(base_driver.BaseDriver):
        def resolve_input_artifacts(self, *args, **kwargs):
            resolved, seen = {}, set()
            for key, artifacts in super().resolve_input_artifacts(*args, **kwargs).items():
                resolved[key] = [a for a in artifacts if a.id not in seen and
                                 a.mlmd_artifact.state == metadata_store_pb2.Artifact.LIVE]
                seen.update(a.id for a in resolved[key])
            return resolved

    return LegacyInputsDriver


def check_new_data(config: PipelineConfig, ti=None) -> bool:
    """False (skip the run) when the data, code and settings are those of the last run.
    Fails while a `recsys run` holds the output folder (the two would share its metadata);
    a run that goes on holds the folder by a lease until its last task."""
    from pipeline.lock import output_lock, take_lease
    from pipeline.run_record import check_raw_folders, nothing_new, run_key

    with output_lock(config.output_dir):
        check_raw_folders(config)
        key = run_key(config)
        if nothing_new(config, key):
            return False
        _catch_up(config, ti.run_id)
        take_lease(config.output_dir, ti.run_id)
    ti.xcom_push(key=RUN_KEY, value=key)
    return True


def give_back_lease(config: PipelineConfig, dag_run=None) -> None:
    """The DAG run's last task, run whatever became of the others. As the DAG's leaf it
    decides the run's state, so it fails when another task failed."""
    from pipeline.lock import give_back_lease as give_back

    give_back(config.output_dir)
    failed = sorted(t.task_id for t in dag_run.get_task_instances()
                    if t.state in ("failed", "upstream_failed"))
    if failed:
        raise RuntimeError(f"the DAG run failed: {', '.join(failed)}")


def _catch_up(config: PipelineConfig, run_id: str) -> None:
    """ExampleGen alone on each span that arrived between runs, through the launcher Airflow's
    tasks use, so the span window's resolver finds its output like any other run's."""
    from tfx.orchestration import data_types, metadata
    from tfx.orchestration.launcher.in_process_component_launcher import (
        InProcessComponentLauncher,
    )

    from pipeline.local_runner import missed_spans
    from pipeline.pipeline import create_span_pipeline

    for span in missed_spans(config):
        span_pipeline = create_span_pipeline(config, source_fingerprint(), span)
        [example_gen] = span_pipeline.components
        InProcessComponentLauncher.create(
            component=example_gen,
            pipeline_info=data_types.PipelineInfo(
                pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
                run_id=f"{run_id}.span-{span}"),
            driver_args=data_types.DriverArgs(enable_cache=True),
            metadata_connection=metadata.Metadata(span_pipeline.metadata_connection_config),
            beam_pipeline_args=list(config.beam_pipeline_args),
            additional_pipeline_args={"tmp_dir": os.path.join(config.pipeline_root, ".temp", "")},
        ).launch()
        print(f"Caught up on span {span} (it arrived between runs)")


def record_run(config: PipelineConfig, ti=None) -> None:
    """last_run.json and the run's report, as `recsys run` writes them (the components' times
    from ML Metadata; their memory is the Airflow workers')."""
    from pipeline.report.facts import metadata_seconds
    from pipeline.report.writer import report_or_warning, write_run_report
    from pipeline.results import open_store
    from pipeline.run_record import record_run as write_record

    result = write_record(config, ti.xcom_pull(task_ids=CHECK_TASK, key=RUN_KEY))
    print(f"Blessed: {'yes' if result.blessed else 'no'}; pushed: {result.pushed_dir or 'no'}")
    path = report_or_warning(write_run_report, config, metadata_seconds(open_store(config)), {})
    if path:
        print(f"Report: {path}")


def create_dag(config: PipelineConfig, schedule: str = DEFAULT_SCHEDULE,
               start_date: datetime.datetime = datetime.datetime(2024, 1, 1)):
    """No catch-up of missed schedule slots (a run trains on all spans anyway), one active run
    at a time (they share the output folder and its metadata)."""
    from airflow.operators.python import PythonOperator, ShortCircuitOperator
    from tfx.dsl.components.base import base_driver
    from tfx.orchestration.airflow.airflow_dag_runner import (
        AirflowDagRunner,
        AirflowPipelineConfig,
    )

    # The pipeline reads a content-addressed copy of the schema (as locally); the checks keep
    # the config as given, so their run key is the one `recsys run` computes.
    tfx_pipeline = create_pipeline(dataclasses.replace(config, schema_file=schema_snapshot(
        config.schema_file, os.path.join(config.output_dir, "schemas"))), source_fingerprint())
    legacy_inputs_driver = _legacy_inputs_driver()
    for component in tfx_pipeline.components:
        if getattr(component, "driver_class", None) is base_driver.BaseDriver:
            component.driver_class = legacy_inputs_driver
    dag = AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config={
        "schedule": schedule, "start_date": start_date, "catchup": False,
        "max_active_runs": 1, "tags": ["tfx", "recsys"]},
    )).run(tfx_pipeline)
    components = list(dag.tasks)
    check = ShortCircuitOperator(task_id=CHECK_TASK, python_callable=check_new_data,
                                 op_kwargs={"config": config}, dag=dag)
    record = PythonOperator(task_id=RECORD_TASK, python_callable=record_run,
                            op_kwargs={"config": config}, dag=dag)
    release = PythonOperator(task_id=RELEASE_TASK, python_callable=give_back_lease,
                             op_kwargs={"config": config}, trigger_rule="all_done", dag=dag)
    record >> release
    for task in components:
        if not task.upstream_list:
            check >> task
        if not task.downstream_list:
            task >> record
    return dag
