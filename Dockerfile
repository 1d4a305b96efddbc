# han2mqtt: smart meter HAN/P1 port to MQTT.
# Build for this machine:
#   docker build -t han2mqtt/han2mqtt:latest .
# Multi-arch build (Raspberry Pi included; needs a buildx builder with QEMU):
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%FT%TZ)" \
#     -t han2mqtt/han2mqtt:latest .
# Podman: `podman build --format docker ...` (its default OCI format drops the HEALTHCHECK).
# Run with a USB M-Bus adapter; the image's user is in dialout (gid 20), which owns the device on
# Debian-based hosts; --group-add gives it the device's group wherever that is another one:
#   docker run -d --name han2mqtt --restart unless-stopped --device /dev/ttyUSB0 \
#     --group-add "$(stat -c %g /dev/ttyUSB0)" -e TZ=Europe/Oslo \
#     -v "$PWD/config:/config:ro" -v han2mqtt-data:/data han2mqtt/han2mqtt:latest
# (/data is state.dir: without a volume there, the month's tariff peaks are lost on every
# re-creation; TZ, or meter.timezone, is the meter's zone: the image is on UTC.)

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler for what PyPI has no wheel for on some platforms (cffi, which cryptography needs,
# has none for arm/v7). Only this stage has it; the image below gets the finished venv.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libffi-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY han2mqtt ./han2mqtt
# pip and setuptools install the package; the image's venv runs it without them.
RUN python -m venv /opt/han2mqtt && /opt/han2mqtt/bin/pip install . \
    && /opt/han2mqtt/bin/pip uninstall --yes --quiet pip setuptools

FROM python:${PYTHON_VERSION}-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="han2mqtt" \
      org.opencontainers.image.description="Smart meter HAN/P1 port to MQTT and Home Assistant" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/han2mqtt/bin:$PATH \
    HAN2MQTT_HEALTH__HEARTBEAT_FILE=/tmp/han2mqtt-heartbeat \
    HAN2MQTT_WEB__HOST=0.0.0.0
EXPOSE 8080
COPY --from=build /opt/han2mqtt /opt/han2mqtt
# A non-root user in the dialout group (gid 20), so the mapped serial device can be opened.
RUN useradd --system --uid 1000 --gid dialout --no-create-home --shell /usr/sbin/nologin han2mqtt \
    && install -d -o han2mqtt -g dialout -m 0750 /data
ENV HAN2MQTT_STATE__DIR=/data
USER han2mqtt
# Mount the configuration here (-v "$PWD/config:/config:ro"); no VOLUME, so a run with
# environment variables only leaves no anonymous volume behind.
WORKDIR /config
# Fails when no frame has arrived for health.max_age seconds (see config.example.yaml).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["han2mqtt", "healthcheck"]
STOPSIGNAL SIGTERM
# Exec form: han2mqtt is PID 1 and receives SIGTERM itself, then publishes "offline" and exits.
ENTRYPOINT ["han2mqtt"]
CMD ["run"]
