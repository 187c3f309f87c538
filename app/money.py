"""Currencies and rounding: ISO 4217 codes with their minor units.

Money is ``Decimal`` in Python and ``NUMERIC`` in PostgreSQL, with the currency code
beside it. Rounding to a currency's minor unit is explicit (``quantize``) and uses
banker's-free ROUND_HALF_UP, which is what invoices and tax authorities expect.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Active ISO 4217 codes -> number of decimal places (minor unit).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)

CURRENCIES: dict[str, int] = {
    **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(_TWO.split(), 2),
    **dict.fromkeys(_THREE.split(), 3),
    **dict.fromkeys(_FOUR.split(), 4),
}


class UnknownCurrency(ValueError):
    pass


def validate_currency(code: str) -> str:
    """Upper-cased ISO 4217 code, or UnknownCurrency with a sentence for the user."""
    clean = (code or "").strip().upper()
    if clean not in CURRENCIES:
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency code (e.g. EUR, USD, JPY)")
    return clean


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half up."""
    places = CURRENCIES[validate_currency(currency)]
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
