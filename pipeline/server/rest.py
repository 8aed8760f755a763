"""TF Serving's REST request and response bodies (the row `instances` and columnar `inputs`
forms) mapped to a signature's tensors and back, so a TF Serving client works unchanged."""

import base64
from typing import Any, Dict, Tuple

import tensorflow as tf

MAX_BATCH = 1024  # rows of one request; more is refused (413), as a bounded server must


class BadRequestError(ValueError):
    """A request body the signature cannot take; str() says which input and why."""


class TooLargeError(BadRequestError):
    """More rows than MAX_BATCH."""


def _decoded(value: Any) -> Any:
    """TF Serving's {"b64": ...} objects → bytes, in nested lists too."""
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise BadRequestError(f"expected a value or {{\"b64\": ...}}, got an object {value}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise BadRequestError("a {\"b64\": ...} value is not base64") from None
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _tensor(name: str, value: Any, spec: tf.TensorSpec) -> tf.Tensor:
    value = _decoded(value)
    if spec.dtype == tf.string:
        strings = tf.nest.flatten(value)
        if any(not isinstance(v, (str, bytes)) for v in strings):
            raise BadRequestError(f"input '{name}' must hold strings")
    if spec.dtype.is_integer and any(isinstance(v, (float, bool))
                                     for v in tf.nest.flatten(value)):
        raise BadRequestError(f"input '{name}' must hold integers")
    try:
        tensor = tf.constant(value, dtype=spec.dtype)
    except (TypeError, ValueError):
        raise BadRequestError(f"input '{name}' must hold {spec.dtype.name} values") from None
    if not spec.shape.is_compatible_with(tensor.shape):
        raise BadRequestError(f"input '{name}' must have shape {_shape(spec.shape)}, "
                         f"got {_shape(tensor.shape)}")
    if tensor.shape.rank and tensor.shape[0] > MAX_BATCH:
        raise TooLargeError(f"input '{name}' has {tensor.shape[0]} rows; at most {MAX_BATCH}")
    return tensor


def _shape(shape: tf.TensorShape) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def request_tensors(body: Any, specs: Dict[str, tf.TensorSpec]
                    ) -> Tuple[Dict[str, tf.Tensor], bool]:
    """(the signature's inputs, whether the body was in row form)."""
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise BadRequestError("the body must be a JSON object with either \"instances\" "
                         "(row form) or \"inputs\" (columnar form)")
    if "instances" in body:
        return _rows(body["instances"], specs), True
    columns = body["inputs"]
    if not isinstance(columns, dict):
        if len(specs) != 1:
            raise BadRequestError(f"\"inputs\" must name the inputs: {', '.join(sorted(specs))}")
        columns = {next(iter(specs)): columns}
    _check_names(columns, specs)
    return {name: _tensor(name, columns[name], spec) for name, spec in specs.items()}, False


def _check_names(given: Dict[str, Any], specs: Dict[str, tf.TensorSpec]) -> None:
    missing, unknown = sorted(set(specs) - set(given)), sorted(set(given) - set(specs))
    if missing:
        raise BadRequestError(f"missing input '{missing[0]}'; the signature takes "
                         f"{', '.join(sorted(specs))}")
    if unknown:
        raise BadRequestError(f"unknown input '{unknown[0]}'; the signature takes "
                         f"{', '.join(sorted(specs))}")


def _named(row: Any) -> bool:
    """An instance naming its inputs (not a bare value, nor a bare {"b64": ...})."""
    return isinstance(row, dict) and set(row) != {"b64"}


def _rows(instances: Any, specs: Dict[str, tf.TensorSpec]) -> Dict[str, tf.Tensor]:
    """Row form: each instance one row of every batched input. An input without a batch
    dimension (a scalar such as k) must have one value across the rows."""
    if not isinstance(instances, list) or not instances:
        raise BadRequestError("\"instances\" must be a non-empty list")
    if len(instances) > MAX_BATCH:
        raise TooLargeError(f"{len(instances)} instances; at most {MAX_BATCH}")
    if len(specs) == 1 and not all(_named(row) for row in instances):
        instances = [{next(iter(specs)): row} for row in instances]
    if not all(_named(row) for row in instances):
        raise BadRequestError("each instance must be an object naming the signature's inputs")
    for row in instances:
        _check_names(row, specs)
    tensors = {}
    for name, spec in specs.items():
        values = [row[name] for row in instances]
        if spec.shape.rank == 0:
            if any(v != values[0] for v in values):
                raise BadRequestError(f"input '{name}' has no batch dimension: every instance "
                                 "must give it the same value")
            values = values[0]
        tensors[name] = _tensor(name, values, spec)
    return tensors


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def response_body(outputs: Dict[str, tf.Tensor], row_form: bool) -> Dict[str, Any]:
    """{"predictions": one entry per row} for the row form, {"outputs": ...} for the columnar
    one; a single output is given bare, as TF Serving does."""
    values = {name: _plain(tensor.numpy().tolist()) for name, tensor in outputs.items()}
    if not row_form:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    names = sorted(values)
    rows = len(values[names[0]])
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [{name: values[name][row] for name in names} for row in range(rows)]}


def error_body(message: str) -> Dict[str, str]:
    return {"error": message}


