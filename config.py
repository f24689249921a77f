# Pecan configuration for Anchor.  Anchor's own settings (authentication,
# signing CAs, registration authorities) live in config.json; see README.rst.

# `pecan serve config.py` listens here.  It is a development server; run
# Anchor under uwsgi in production (uwsgi's own options then set the socket).
server = {
    "host": "127.0.0.1",
    "port": "5016",
}

app = {
    "root": "anchor.controllers.RootController",
    "modules": ["anchor"],
    "debug": False,
    # Requests with a larger body are refused with 413 before it is read.
    "max_body_bytes": 1024 * 1024,
}

logging = {
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "__force_dict__": True,
        "anchor": {"level": "INFO"},
        "pecan": {"level": "WARNING"},
    },
    "handlers": {
        "console": {
            "level": "DEBUG",
            "class": "logging.StreamHandler",
            "formatter": "simple",
        },
    },
    "formatters": {
        "simple": {
            "format": "%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s",
        },
    },
}
