# llem worker image for the TensorRT-LLM backend, on NVIDIA's release image.
# Built engines are cached under /llem/cache/tensorrt (mount a volume there
# to keep them between runs).
#   docker build -f docker/tensorrt.Dockerfile \
#     --build-arg BASE_IMAGE=nvcr.io/nvidia/tensorrt-llm/release:1.0.0 --build-arg CUDA_MAJOR=12 \
#     -t llenergymeasure/tensorrt:0.1.0-cuda12 .
ARG BASE_IMAGE=nvcr.io/nvidia/tensorrt-llm/release:1.0.0
FROM ${BASE_IMAGE}

ARG CUDA_MAJOR=12
ARG LLEM_VERSION=dev
LABEL org.opencontainers.image.title="llem-tensorrt" \
      org.opencontainers.image.description="llem worker: TensorRT-LLM backend" \
      org.opencontainers.image.version="${LLEM_VERSION}" \
      io.llenergymeasure.llem.backend="tensorrt" \
      io.llenergymeasure.llem.cuda_major="${CUDA_MAJOR}"

ENV HF_HOME=/llem/cache/huggingface \
    LLEM_TRT_ENGINE_CACHE=/llem/cache/tensorrt \
    PYTHONUNBUFFERED=1

COPY docker/entrypoint.sh /usr/local/bin/llem-worker-entrypoint
ENTRYPOINT ["/usr/local/bin/llem-worker-entrypoint"]
