# The image every step of the Kubeflow / Vertex pipeline runs in (`make kubeflow` compiles the
# spec that names it). The TFX image brings TensorFlow, TFX, TFT, TFDV, TFMA and Beam at the
# versions requirements/constraints.txt pins; the project adds its own modules and schema.
FROM tensorflow/tfx:1.16.0
WORKDIR /pipeline
COPY pyproject.toml setup.py README.md ./
COPY components components
COPY data data
COPY pipeline pipeline
COPY schemas schemas
RUN pip install --no-cache-dir --no-deps . && pip install --no-cache-dir "pyyaml>=6"
ENV TF_USE_LEGACY_KERAS=1
ENV TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1
