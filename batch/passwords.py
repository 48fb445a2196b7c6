"""Generated passwords: `secrets`-random, 16 characters, meeting Entra's complexity rules
(batch/rules.py) and safe in a CSV opened by Excel (they never start with = + - @, and hold
no quote, comma or semicolon)."""

from __future__ import annotations

import secrets
import string

from batch.rules import password_problem

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
SYMBOLS = "!#$%&*?^_~.:"
ALPHABET = LOWER + UPPER + DIGITS + SYMBOLS
DEFAULT_LENGTH = 16


def generate_password(length: int = DEFAULT_LENGTH) -> str:
    """One character of each class, the rest from the whole alphabet, shuffled; the first
    character is a letter so that no spreadsheet reads the cell as a formula."""
    if length < 8:
        raise ValueError("a generated password has at least 8 characters")
    while True:
        chars = [secrets.choice(LOWER), secrets.choice(UPPER), secrets.choice(DIGITS), secrets.choice(SYMBOLS)]
        chars += [secrets.choice(ALPHABET) for _ in range(length - 4)]
        secrets.SystemRandom().shuffle(chars)
        if not chars[0].isalpha():
            first = next(i for i, c in enumerate(chars) if c.isalpha())
            chars[0], chars[first] = chars[first], chars[0]
        password = "".join(chars)
        if password_problem(password) is None:
            return password
