# Anchor test container: `docker build -t anchor . && docker run -p 5016:5016 anchor`
# serves the README walkthrough with a test CA made at first start.
# Not built in CI: these machines have no Docker engine.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/anchor
COPY . /opt/anchor
RUN pip install --no-cache-dir . uwsgi \
    && useradd --system --home-dir /opt/anchor anchor \
    && chown -R anchor /opt/anchor/CA /opt/anchor/certs

USER anchor
EXPOSE 5016
CMD ["sh", "-c", "python tools/bootstrap_ca.py --if-missing CA && exec uwsgi --http-socket :5016 --pecan config.py -p 4 --master --die-on-term"]
