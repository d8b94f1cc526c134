# janus-monitor: a slim runtime image. Build: docker build -t janus-monitor .
# Run: docker run -p 9720:9720 -v $PWD/janus-monitor.yml:/etc/janus-monitor/janus-monitor.yml \
#        -e JANUS_ADMIN_SECRET=... janus-monitor
# The install steps are the README's: build the wheel, install it into a virtualenv.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN python -m pip install --no-cache-dir --upgrade pip==24.3.1 \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="janus-monitor" \
      org.opencontainers.image.description="Monitoring and remediation for Janus WebRTC servers (VideoRoom)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/janus-monitor/janus-monitor"
ARG UID=10001
RUN useradd --system --uid "${UID}" --home-dir /var/lib/janus-monitor --create-home janus-monitor
COPY --from=build /wheels /wheels
RUN python -m venv /opt/janus-monitor \
 && /opt/janus-monitor/bin/pip install --no-cache-dir --no-index --find-links /wheels janus-monitor \
 && rm -rf /wheels
COPY docker/janus-monitor.yml /etc/janus-monitor/janus-monitor.yml
ENV PATH="/opt/janus-monitor/bin:${PATH}" PYTHONUNBUFFERED=1
USER ${UID}
WORKDIR /var/lib/janus-monitor
EXPOSE 9720
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9720/-/healthy', timeout=2).status != 200)"]
ENTRYPOINT ["janus-monitor"]
CMD ["run", "--config", "/etc/janus-monitor/janus-monitor.yml"]
