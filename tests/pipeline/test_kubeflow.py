"""`recsys kubeflow` compiles the same pipeline into a Kubeflow Pipelines v2 spec."""

import json

from pipeline import cli

IMAGE = "gcr.io/example/recsys-pipeline:test"
STEPS = {"FileBasedExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
         "ValidationGate", "transform_cache_resolver", "Transform", "Trainer", "Evaluator",
         "ReleaseGate", "Pusher", "previous_statistics",
         # KFP splits the latest-blessed-model resolver into two steps
         "latest_blessed_model_resolver-model-resolver",
         "latest_blessed_model_resolver-model-blessing-resolver"}
BEAM_STEPS = {"FileBasedExampleGen", "StatisticsGen", "Transform", "Evaluator"}


def test_every_component_the_image_and_the_beam_args_are_in_the_spec(tmp_path, capsys):
    spec_file = tmp_path / "pipeline.json"
    assert cli.main(["kubeflow", "--data", "gs://bucket/data", "--output", "gs://bucket/out",
                     "--spec", str(spec_file), "--image", IMAGE,
                     "--beam-arg=--runner=DataflowRunner"]) == 0
    assert str(spec_file) in capsys.readouterr().out
    spec = json.loads(spec_file.read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) >= STEPS
    assert "span_window" not in tasks  # KFP v2 cannot compile SpanRangeStrategy
    executors = spec["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {IMAGE}
    text = json.dumps(spec)
    assert "gs://bucket/data" in text and "span-{SPAN}/ratings.csv" in text
    assert "/pipeline/schemas/schema.pbtxt" in text
    for step in BEAM_STEPS:
        args = executors[f"{step}_executor"]["container"]["args"]
        assert "--runner=DataflowRunner" in args
        assert "--setup_file=/pipeline/setup.py" in args  # the image's copy ships to workers
