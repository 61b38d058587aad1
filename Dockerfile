# jersey-cls training image. CUDA comes from the torch wheels in requirements.lock, so the host needs only an
# NVIDIA driver (R580+ for the CUDA 13 wheels) and the NVIDIA container toolkit: docker run --gpus all ...
FROM python:3.11-slim

# Runs and caches (the embedded set, the data doctor's results, timm's ImageNet weights, torch's compile cache)
# live under /work, the one volume to mount, so the next `docker run` finds them.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    XDG_CACHE_HOME=/work/.cache \
    HF_HOME=/work/.cache/huggingface

RUN useradd --create-home --uid 1000 jersey \
    && mkdir /work \
    && chown jersey:jersey /work

# The pinned, hash-checked dependencies first, from the lock alone: a code change does not reinstall them.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock

COPY pyproject.toml README.md /opt/jersey-cls/
COPY jersey_cls /opt/jersey-cls/jersey_cls
COPY configs /opt/jersey-cls/configs
RUN pip install --no-cache-dir --no-deps /opt/jersey-cls

USER 1000:1000
WORKDIR /work
ENTRYPOINT ["jersey-cls"]
CMD ["--help"]
