# llem worker image for the PyTorch (transformers) backend.
# Built by .github/workflows/images.yml for each CUDA major:
#   docker build -f docker/pytorch.Dockerfile \
#     --build-arg BASE_IMAGE=pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime --build-arg CUDA_MAJOR=12 \
#     -t llenergymeasure/pytorch:0.1.0-cuda12 .
ARG BASE_IMAGE=pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}

ARG CUDA_MAJOR=12
ARG LLEM_VERSION=dev
LABEL org.opencontainers.image.title="llem-pytorch" \
      org.opencontainers.image.description="llem worker: PyTorch/transformers backend" \
      org.opencontainers.image.version="${LLEM_VERSION}" \
      io.llenergymeasure.llem.backend="pytorch" \
      io.llenergymeasure.llem.cuda_major="${CUDA_MAJOR}"

RUN pip install --no-cache-dir \
      "transformers==5.17.0" \
      "accelerate==1.15.0" \
      "bitsandbytes==0.48.2" \
      "sentencepiece==0.2.1" \
      "nvidia-ml-py==13.580.82"

ENV HF_HOME=/llem/cache/huggingface \
    PYTHONUNBUFFERED=1

COPY docker/entrypoint.sh /usr/local/bin/llem-worker-entrypoint
ENTRYPOINT ["/usr/local/bin/llem-worker-entrypoint"]
