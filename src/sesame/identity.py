"""Identity documents as KYC delivers them: the PRC resident identity card number, its check character and its mask.

A resident identity number has 18 characters: a 6-digit administrative division code, the birth date (YYYYMMDD),
a 3-digit sequence whose parity is the sex (odd: male) and a check character over the first 17 digits
(ISO 7064 MOD 11-2: the digits weighted by 2**(17 - i) mod 11, and "10X98765432"[sum mod 11]).

Only the raw zone holds the whole number as delivered. Ingestion checks its form and check character, then keeps
the last `KEPT_CHARACTERS` characters behind a mask (`mask`); a credit report states that masked form, which binds
it to a person without copying the number anywhere.
"""

from __future__ import annotations

DOCUMENT_TYPE = "PRC resident identity card"
PATTERN = r"^[0-9]{17}[0-9X]$"
WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
CHECK_CHARACTERS = "10X98765432"
KEPT_CHARACTERS = 4
MASK_CHARACTER = "*"


def check_character(first17: str) -> str:
    """The check character of the 17 digits before it."""
    return CHECK_CHARACTERS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def is_valid(number: str) -> bool:
    """The form (17 digits, then a digit or X) and the check character hold."""
    return (
        len(number) == 18
        and number[:17].isdigit()
        and number[17] in "0123456789X"
        and check_character(number[:17]) == number[17]
    )


def mask(number: str) -> str:
    """Every character but the last `KEPT_CHARACTERS` replaced by the mask character, the length kept."""
    return MASK_CHARACTER * (len(number) - KEPT_CHARACTERS) + number[-KEPT_CHARACTERS:]
