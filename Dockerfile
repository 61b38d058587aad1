# jersey-cls training image. CUDA comes from the torch wheels in requirements.lock, so the host needs only an
# NVIDIA driver (R580+ for the CUDA 13 wheels) and the NVIDIA container toolkit: docker run --gpus all ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

RUN useradd --create-home --uid 1000 jersey \
    && mkdir /work \
    && chown jersey:jersey /work

# The pinned dependencies first, from the lock alone: a code change does not reinstall them.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir -r /tmp/requirements.lock

COPY pyproject.toml README.md /opt/jersey-cls/
COPY jersey_cls /opt/jersey-cls/jersey_cls
COPY configs /opt/jersey-cls/configs
RUN pip install --no-cache-dir --no-deps /opt/jersey-cls

USER 1000:1000
# Runs, the embedded set and W&B files land under /work (mount it); the configs ship in /opt/jersey-cls/configs.
WORKDIR /work
ENTRYPOINT ["jersey-cls"]
CMD ["--help"]
