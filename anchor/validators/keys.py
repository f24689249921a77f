"""Validators that look at the request's public key."""

from anchor.validators import ValidationError, options

KEY_TYPES = ("RSA", "DSA", "EC", "Ed25519", "Ed448")


def _public_key_options(allowed_keys=None):
    if not isinstance(allowed_keys, dict) or not allowed_keys:
        raise ValueError("allowed_keys must be an object mapping key types (%s) to a minimum size "
                         "in bits (0 for any)" % ", ".join(KEY_TYPES))
    prepared = {}
    for key_type, minimum in allowed_keys.items():
        if key_type not in KEY_TYPES:
            raise ValueError("allowed_keys: unknown key type %r; use one of %s" % (key_type, ", ".join(KEY_TYPES)))
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
            raise ValueError("allowed_keys.%s must be a whole number of bits, 0 for any size" % key_type)
        prepared[key_type] = minimum
    return {"allowed_keys": prepared}


@options(_public_key_options)
def public_key(csr, allowed_keys, **kwargs):
    """The key type is listed in ``allowed_keys`` and the key at least that
    many bits (RSA and DSA: modulus; EC: curve size; Ed25519: 255; Ed448: 448)."""
    key_type, size = csr.public_key_type, csr.public_key_size
    if key_type not in allowed_keys:
        raise ValidationError("%s keys are not allowed" % key_type)
    if size < allowed_keys[key_type]:
        raise ValidationError("%s key of %d bits is below the minimum of %d" % (key_type, size, allowed_keys[key_type]))
