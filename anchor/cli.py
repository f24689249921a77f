"""The ``anchor`` command: run, check and bootstrap an Anchor service.

    anchor serve [--config-py config.py] [--uwsgi-command]
    anchor check-config [config.json]
    anchor bootstrap-ca [CA] [--key-type rsa4096] [--if-missing]
"""

import argparse
import os
import shlex
import shutil
import sys

from anchor import __version__, settings, testca

DESCRIPTION = """\
Anchor signs short-lived certificates for the services of a cloud or a
fleet.  Clients post a certificate signing request to a registration
authority (RA); Anchor authenticates them, checks the request against the
RA's policy and signs a certificate that lives for hours.  Settings live in
config.json (found through $ANCHOR_CONF, ./config.json,
~/.config/anchor/config.json, $VIRTUAL_ENV/etc/anchor/config.json or
/etc/anchor/config.json) and the web server's in config.py.
"""


def serve(args):
    """Run Anchor with Pecan's development server, or print the uwsgi line."""
    if not os.path.isfile(args.config_py):
        print("anchor serve: %s not found (the Pecan config; see README.rst)" % args.config_py, file=sys.stderr)
        return 1
    if args.uwsgi_command:
        venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
        print(" ".join(shlex.quote(part) for part in (
            "uwsgi", "--http-socket", ":%d" % args.port, "--venv", venv, "--pecan", args.config_py,
            "-p", str(args.processes), "--master", "--die-on-term", "--enable-threads")))
        return 0
    pecan = shutil.which("pecan", path=os.path.dirname(sys.executable)) or shutil.which("pecan")
    if pecan is None:
        print("anchor serve: the pecan command is missing; pip install pecan", file=sys.stderr)
        return 1
    # The pecan executable next to this interpreter, with fixed arguments; no shell.
    os.execv(pecan, [pecan, "serve", args.config_py])  # nosec B606


def check_config(args):
    """Load config.json and build every plugin, as the service would at start-up."""
    from anchor import app

    try:
        config = settings.load(args.path)
        authorities = app.build_authorities(config)
    except settings.ConfigError as exc:
        print("anchor check-config: %s" % exc, file=sys.stderr)
        return 1
    print("%s: OK, %d registration authorit%s: %s" % (
        config.path, len(authorities), "y" if len(authorities) == 1 else "ies", ", ".join(sorted(authorities))))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="anchor", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="anchor %s" % __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve_parser = commands.add_parser(
        "serve", help="run Anchor (development server) or print the uwsgi command",
        description="Run Anchor with `pecan serve CONFIG_PY` (a development server: single "
                    "process, for trying things out), or with --uwsgi-command print the uwsgi "
                    "command line to run it in production.")
    serve_parser.add_argument("--config-py", default="config.py", help="the Pecan config (default: config.py)")
    serve_parser.add_argument("--uwsgi-command", action="store_true",
                              help="print the uwsgi command line instead of serving")
    serve_parser.add_argument("--port", type=int, default=5016, help="port for the uwsgi line (default: 5016)")
    serve_parser.add_argument("--processes", type=int, default=4, help="uwsgi workers (default: 4)")
    serve_parser.set_defaults(run=serve)

    check_parser = commands.add_parser(
        "check-config", help="check a config.json and exit non-zero with the errors",
        description="Read config.json and build everything the service builds at start-up "
                    "(plugins, CA keys, HSM sessions, audit target), without serving. Prints OK "
                    "and exits 0, or prints the problem and exits 1.")
    check_parser.add_argument("path", nargs="?", default=None,
                              help="config.json to check (default: found as the service finds it)")
    check_parser.set_defaults(run=check_config)

    bootstrap_parser = commands.add_parser(
        "bootstrap-ca", help="create a self-signed test CA (like the README's openssl command)",
        description="Create CA/root-ca.crt and CA/root-ca-unwrapped.key (mode 0400): a "
                    "self-signed CA for testing. Never overwrites existing files.")
    testca.add_arguments(bootstrap_parser)
    bootstrap_parser.set_defaults(run=testca.run)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
