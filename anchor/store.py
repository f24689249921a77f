"""Where issued certificates are recorded.

Each certificate is written to ``<output_path>/<sha256 of its DER, hex>.crt``
in PEM before it is returned to the client.  The write is atomic and durable:
a hidden temporary file in the same directory is written, flushed to disk,
then renamed into place, and the directory itself is flushed.  A crash
leaves either the whole certificate or, at worst, a ``.*.tmp`` file that
no reader mistakes for an issued certificate.
"""

import os
import tempfile

from cryptography.hazmat.primitives import hashes


class CertificateStore:
    def __init__(self, output_path):
        if not os.path.isdir(output_path):
            raise ValueError("output_path %s is not a directory" % output_path)
        if not os.access(output_path, os.W_OK | os.X_OK):
            raise ValueError("output_path %s is not writable" % output_path)
        self.path = output_path

    def record(self, certificate, pem):
        """Write ``certificate`` (whose PEM form is ``pem``) durably; return the
        file's path.  Raises OSError."""
        name = certificate.fingerprint(hashes.SHA256()).hex() + ".crt"
        final = os.path.join(self.path, name)
        descriptor, temporary = tempfile.mkstemp(dir=self.path, prefix="." + name, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o644)
            os.rename(temporary, final)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        self._sync_directory()
        return final

    def _sync_directory(self):
        descriptor = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
