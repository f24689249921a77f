#!/usr/bin/env python3
"""Create a self-signed test CA for Anchor (the same as `anchor bootstrap-ca`).

    .venv/bin/python tools/bootstrap_ca.py [CA] [--key-type rsa4096] [--if-missing]
"""

import sys

from anchor.testca import main

if __name__ == "__main__":
    sys.exit(main())
