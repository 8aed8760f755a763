"""TFX's Pusher with a filesystem push that a server never sees half written.

TFX's executor copies the model into `serving/<version>` in place (saved_model.pb last), so a
run killed or out of space during the copy leaves a partial version, the highest, which TF
Serving then tries to load. Here the version is published through components.pusher.versions
(copied aside, then renamed). Destinations with a scheme (gs://, s3://) keep TFX's copy: an
object store has no rename.
"""

import os

from tfx.components import Pusher as TfxPusher
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as keys
from tfx.utils import io_utils, proto_utils

from components.pusher.versions import publish


class Executor(tfx_pusher.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX names it
        destination = proto_utils.json_to_proto(
            exec_properties[keys.PUSH_DESTINATION_KEY], pusher_pb2.PushDestination())
        base = destination.filesystem.base_directory
        if destination.WhichOneof("destination") != "filesystem" or "://" in base:
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[keys.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        version = publish(model_path, base, reuse_highest=True)
        io_utils.copy_dir(model_path, model_push.uri)  # TFX's archive copy, as its Pusher
        self._MarkPushed(model_push, pushed_destination=os.path.join(base, version),
                         pushed_version=version)


class Pusher(TfxPusher):
    """TFX's Pusher, publishing through the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
