"""Validate and generate the Chinese identifiers an application for a new company carries.

Covers resident ID numbers (GB 11643-1999), unified social credit codes (GB 32100-2015,
which embed a GB 11714 organisation code), mainland mobile numbers and money amounts.
Each ``*_error`` function returns a short English sentence for an HTTP 422 response,
or None when the value is valid.
"""

import datetime
import decimal
import re

# ISO 7064 MOD 11-2 as used by GB 11643-1999: the weight of position i is 2**(18 - i) mod 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARACTERS = "0123456789X"
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)

# GB 32100-2015 leaves out I, O, S, V and Z, which are easily confused with 1, 0, 5, U and 2.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {character: value for value, character in enumerate(_USCC_ALPHABET)}
# GB 32100-2015: the weight of position i is 3**(i - 1) mod 31.
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Leading zeros are refused so that the 15-digit limit counts significant digits only.
_MONEY = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def _is_digits(value: str) -> bool:
    # str.isdigit alone also accepts full-width and superscript digits: stored, they would
    # not match the same number typed in ASCII, and int() rejects superscripts outright.
    return value.isascii() and value.isdigit()


def _id_check_character(first17: str) -> str:
    total = sum(int(character) * weight for character, weight in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK_CHARACTERS[(12 - total % 11) % 11]


def _org_code_check_character(body: str) -> str:
    # GB 11714 values letters A=10 ... Z=35 (base 36), not by their place in the USCC alphabet.
    total = sum(int(character, 36) * weight for character, weight in zip(body, _ORG_CODE_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def _uscc_check_character(first17: str) -> str:
    total = sum(_USCC_VALUES[c] * weight for c, weight in zip(first17, _USCC_WEIGHTS))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def normalise_id_number(value: str) -> str:
    """Strip surrounding whitespace and upper-case a trailing check character x."""
    # Only the check character is touched: str.upper on arbitrary input can change its
    # length (e.g. 'ß' -> 'SS') and so change which error the validator reports.
    value = value.strip()
    if value.endswith("x"):
        return value[:-1] + "X"
    return value


def id_number_error(value: str, today: datetime.date | None = None) -> str | None:
    """Return what is wrong with a resident ID number, or None if it is valid."""
    # Validation is of the normalised form, so callers must store normalise_id_number(value).
    value = normalise_id_number(value)
    if len(value) != 18:
        return "must be 18 characters"
    if not _is_digits(value[:17]):
        return "first 17 characters must be digits"
    if value[17] not in _ID_CHECK_CHARACTERS:
        return "last character must be a digit or X"
    birth_text = value[6:14]
    try:
        birth = datetime.date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:]))
    except ValueError:
        return f"birth date {birth_text} is not a real date"
    if birth < _EARLIEST_BIRTH:
        return f"birth date {birth_text} is before 1900-01-01"
    if birth > (today if today is not None else datetime.date.today()):
        return f"birth date {birth_text} is in the future"
    # Checked after the date so that a mistyped date is reported as such, not as a bad check.
    if value[17] != _id_check_character(value[:17]):
        return "check digit does not match"
    return None


def make_id_number(region: str, birth: datetime.date, sequence: int) -> str:
    """Build a valid resident ID number from a region code, birth date and sequence number."""
    if len(region) != 6 or not _is_digits(region):
        raise ValueError("region must be 6 digits")
    if not _EARLIEST_BIRTH <= birth <= datetime.date.today():
        raise ValueError("birth date must be between 1900-01-01 and today")
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be between 0 and 999")
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + _id_check_character(first17)


def mask_id_number(value: str) -> str:
    """Replace the middle of an ID number with asterisks, keeping a few characters at each end."""
    # Four at each end of a full number lets a clerk match it against a document; shorter
    # (legacy or malformed) values keep at most two so that no more than half is shown.
    kept = 4 if len(value) >= 18 else min(2, len(value) // 4)
    return value[:kept] + "*" * (len(value) - 2 * kept) + value[len(value) - kept :]


def uscc_error(value: str) -> str | None:
    """Return what is wrong with a unified social credit code, or None if it is valid."""
    if len(value) != 18:
        return "must be 18 characters"
    for position, character in enumerate(value, start=1):
        if character not in _USCC_VALUES:
            return (
                f"character {character!r} at position {position} is not allowed; "
                "use digits and capital letters other than I, O, S, V and Z"
            )
    if not _is_digits(value[2:8]):
        return "positions 3 to 8 must be digits (the administrative division code)"
    if value[16] != _org_code_check_character(value[8:16]):
        return "organisation code check character (position 17) does not match"
    if value[17] != _uscc_check_character(value[:17]):
        return "check character (position 18) does not match"
    return None


def make_uscc(authority: str, org_type: str, region: str, org_body: str) -> str:
    """Build a valid unified social credit code, computing both check characters."""
    if authority not in _USCC_VALUES:
        raise ValueError("authority must be one character of the code alphabet")
    if org_type not in _USCC_VALUES:
        raise ValueError("organisation type must be one character of the code alphabet")
    if len(region) != 6 or not _is_digits(region):
        raise ValueError("region must be 6 digits")
    if len(org_body) != 8 or any(character not in _USCC_VALUES for character in org_body):
        raise ValueError("organisation code body must be 8 characters of the code alphabet")
    first17 = authority + org_type + region + org_body + _org_code_check_character(org_body)
    return first17 + _uscc_check_character(first17)


def mobile_error(value: str) -> str | None:
    """Return what is wrong with a mainland mobile number, or None if it is valid."""
    if len(value) != 11 or not _is_digits(value):
        return "must be 11 digits"
    if value[0] != "1" or value[1] in "012":
        return "must start with 13, 14, 15, 16, 17, 18 or 19"
    return None


def money_error(value: str) -> str | None:
    """Return what is wrong with a money amount, or None if it is valid."""
    match = _MONEY.fullmatch(value)
    if match is None:
        return "must be a decimal number such as 1000000.00"
    sign, whole, fraction = match.groups()
    if sign:
        return "must not be negative"
    if fraction is not None and len(fraction) > 2:
        return "must have at most two decimal places"
    if len(whole) > 15:
        return "must have at most 15 digits before the decimal point"
    return None


def parse_money(value: str) -> decimal.Decimal:
    """Parse a money amount into a Decimal with exactly two decimal places."""
    error = money_error(value)
    if error is not None:
        raise ValueError(error)
    # Padding the text, rather than calling quantize, keeps the result exact whatever the
    # caller's decimal context precision is.
    whole, _, fraction = value.partition(".")
    return decimal.Decimal(f"{whole}.{fraction:0<2}")
