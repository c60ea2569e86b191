# llem worker image for the vLLM backend, on the official vLLM image.
# The upstream entrypoint starts the OpenAI API server; llem runs its own
# harness instead, so the entrypoint is replaced.
#   docker build -f docker/vllm.Dockerfile \
#     --build-arg BASE_IMAGE=vllm/vllm-openai:v0.15.0 --build-arg CUDA_MAJOR=12 \
#     -t llenergymeasure/vllm:0.1.0-cuda12 .
ARG BASE_IMAGE=vllm/vllm-openai:v0.15.0
FROM ${BASE_IMAGE}

ARG CUDA_MAJOR=12
ARG LLEM_VERSION=dev
LABEL org.opencontainers.image.title="llem-vllm" \
      org.opencontainers.image.description="llem worker: vLLM backend" \
      org.opencontainers.image.version="${LLEM_VERSION}" \
      io.llenergymeasure.llem.backend="vllm" \
      io.llenergymeasure.llem.cuda_major="${CUDA_MAJOR}"

ENV HF_HOME=/llem/cache/huggingface \
    PYTHONUNBUFFERED=1 \
    VLLM_NO_USAGE_STATS=1

COPY docker/entrypoint.sh /usr/local/bin/llem-worker-entrypoint
ENTRYPOINT ["/usr/local/bin/llem-worker-entrypoint"]
