"""A private SoftHSM2 token for the tests of the ``pkcs11`` signing backend.

Each :class:`SoftHSM` lives in its own directory (its ``softhsm2.conf`` and
token store), so tests never touch the system's tokens.  Every process that
uses the token needs ``SOFTHSM2_CONF`` pointing at that file: the test
module sets it in ``os.environ`` for the test process (and its forks).

Tokens are made and keys imported with the SoftHSM2 and OpenSC command-line
tools, never with the code under test.  Every subprocess has a timeout.

Imported by the tests of this directory as ``import softhsm``.
"""

import os
import shutil
import subprocess

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
INSTALL_HINT = "install it: apt-get install softhsm2 opensc"
TOOLS = ("softhsm2-util", "pkcs11-tool")
TIMEOUT = 60


def require_tools():
    """Fail (never skip) when SoftHSM2 or OpenSC is missing."""
    for name in TOOLS:
        if shutil.which(name) is None:
            pytest.fail("%s not found; %s" % (name, INSTALL_HINT), pytrace=False)
    if not os.path.exists(MODULE):
        pytest.fail("the SoftHSM2 PKCS#11 module %s is missing; %s" % (MODULE, INSTALL_HINT),
                    pytrace=False)


def _text(data):
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


class SoftHSM:
    """A SoftHSM2 configuration and token directory under ``directory``."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.token_dir = os.path.join(self.directory, "tokens")
        self.conf_path = os.path.join(self.directory, "softhsm2.conf")
        os.makedirs(self.token_dir, exist_ok=True)
        with open(self.conf_path, "w") as handle:
            handle.write("directories.tokendir = %s\n"
                         "objectstore.backend = file\n"
                         "log.level = ERROR\n"
                         "slots.removable = false\n" % self.token_dir)

    @property
    def env(self):
        """The environment of a process using this token."""
        return dict(os.environ, SOFTHSM2_CONF=self.conf_path)

    def run(self, *args):
        """Run a SoftHSM2 / OpenSC tool; fail the test with its output if it fails."""
        try:
            result = subprocess.run(args, env=self.env, capture_output=True, timeout=TIMEOUT,
                                    check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail("%r did not finish within %s s:\n%s\n%s"
                        % (args, TIMEOUT, _text(exc.stdout), _text(exc.stderr)))
        if result.returncode != 0:
            pytest.fail("%r exited with %s:\n%s\n%s"
                        % (args, result.returncode, _text(result.stdout), _text(result.stderr)))
        return _text(result.stdout)

    def init_token(self, label, pin, so_pin="123456"):
        # --free takes the free slot and re-numbers it: select tokens by label.
        self.run("softhsm2-util", "--init-token", "--free", "--label", label,
                 "--pin", pin, "--so-pin", so_pin)

    def import_key(self, pkcs8_pem_path, token, pin, key_id, label):
        """Import a private key (PKCS#8 PEM) with CKA_ID ``key_id`` (hex)."""
        self.run("softhsm2-util", "--import", str(pkcs8_pem_path), "--token", token,
                 "--pin", pin, "--id", key_id, "--label", label)

    def list_objects(self, token, pin):
        """``pkcs11-tool --list-objects`` of a token, logged in."""
        return self.run("pkcs11-tool", "--module", MODULE, "--token-label", token,
                        "--login", "--pin", pin, "--list-objects")

    def slot_of(self, label):
        """The slot number of the token labelled ``label``, found with PyKCS11
        in this process (which must have SOFTHSM2_CONF set)."""
        import PyKCS11

        assert os.environ.get("SOFTHSM2_CONF") == self.conf_path
        library = PyKCS11.PyKCS11Lib()
        library.load(MODULE)
        try:
            for slot in library.getSlotList(tokenPresent=True):
                if library.getTokenInfo(slot).label.strip() == label:
                    return slot
        finally:
            library.unload()
        pytest.fail("no token labelled %r in %s" % (label, self.token_dir))

    def close_all_sessions(self, slot):
        """C_CloseAllSessions on ``slot`` from this process: PyKCS11 shares the
        loaded module between its users, so this closes the backend's session."""
        import PyKCS11

        library = PyKCS11.PyKCS11Lib()
        library.load(MODULE)
        try:
            library.closeAllSessions(slot)
        finally:
            library.unload()
