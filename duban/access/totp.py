"""The optional second factor: TOTP (RFC 6238, pyotp), 6 digits every 30 seconds.

`duban user totp NAME` makes a new secret and prints its provisioning URI (an authenticator
app reads it as a QR code or typed in); from then on that user signs in with a code too. A
code is accepted for the current 30-second step or one step either side (clock drift), and
each step only once: the step of the last accepted code is kept, so a code seen over a
shoulder or in a proxy log cannot be used again. Time comes from the injected clock.
"""

from __future__ import annotations

from datetime import datetime

import pyotp
from pyotp.utils import strings_equal

ISSUER = "duban"  # ASCII: some authenticator apps mangle other issuers
DRIFT = 1  # steps accepted either side of now


def new_secret() -> str:
    return pyotp.random_base32()


def uri(secret: str, user: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=ISSUER)


def code_at(secret: str, at: datetime) -> str:
    """The code an authenticator shows at `at` (for tests and for pairing checks)."""
    return pyotp.TOTP(secret).at(at)


def accepted_step(secret: str, code: str, last_step: int | None, now: datetime) -> int | None:
    """The time step `code` is valid for (now ± DRIFT, later than `last_step`), or None."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    if not code.isascii() or not code.isdigit():
        return None
    step = totp.timecode(now)
    for candidate in range(step - DRIFT, step + DRIFT + 1):
        if (last_step is None or candidate > last_step) and strings_equal(totp.generate_otp(candidate), code):
            return candidate
    return None
