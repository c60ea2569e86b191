# llem worker image for the TensorRT-LLM backend, on NVIDIA's release image.
# The default tag is the pinned TensorRT-LLM of tools/upstream/targets.json
# (CUDA 13); the CUDA 12 image is built on release:1.0.0, the last CUDA 12
# release (.github/workflows/images.yml).
#   docker build -f docker/tensorrt.Dockerfile \
#     --build-arg BASE_IMAGE=nvcr.io/nvidia/tensorrt-llm/release:1.2.0 --build-arg CUDA_MAJOR=13 \
#     -t llenergymeasure/tensorrt:0.1.0-cuda13 .
ARG BASE_IMAGE=nvcr.io/nvidia/tensorrt-llm/release:1.2.0
FROM ${BASE_IMAGE}

ARG CUDA_MAJOR=13
ARG LLEM_VERSION=dev
LABEL org.opencontainers.image.title="llem-tensorrt" \
      org.opencontainers.image.description="llem worker: TensorRT-LLM backend" \
      org.opencontainers.image.version="${LLEM_VERSION}" \
      io.llenergymeasure.llem.backend="tensorrt" \
      io.llenergymeasure.llem.cuda_major="${CUDA_MAJOR}"

ENV HF_HOME=/llem/cache/huggingface \
    PYTHONUNBUFFERED=1

COPY docker/entrypoint.sh /usr/local/bin/llem-worker-entrypoint
ENTRYPOINT ["/usr/local/bin/llem-worker-entrypoint"]
