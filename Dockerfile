# Anchor test container:
#   docker build -t anchor . && docker run -p 5016:5016 anchor
# serves the README walkthrough with a test CA made at first start.  Mount a
# CA at /key (root-ca.crt and root-ca-unwrapped.key, or the key alone) and
# config.json / config.py at /config to use your own; see
# tools/docker/entrypoint.sh.  Not built in CI: these machines have no
# Docker engine (the entry script is tested directly instead).
FROM python:3.11-slim

# uwsgi compiles at install time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/anchor
COPY . /opt/anchor
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[messaging]" "uwsgi>=2.0" \
    && useradd --system --uid 10001 --home-dir /opt/anchor anchor \
    && mkdir -p CA certs \
    && chown -R anchor CA certs config.py

USER 10001
EXPOSE 5016
ENTRYPOINT ["/opt/anchor/tools/docker/entrypoint.sh"]
CMD ["uwsgi", "--http-socket", ":5016", "--pecan", "config.py", "-p", "4", "--master", "--die-on-term", "--enable-threads"]
