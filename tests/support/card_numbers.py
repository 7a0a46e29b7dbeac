"""Card numbers the tests know to be valid or invalid without asking the code under test.

The valid ones are Stripe's published test cards; the invalid ones were checked
by hand. Generated numbers get their check digit from `check_digit`, a Luhn
written here from the standard's table, so a property test never checks
server.domain.card_numbers against itself.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

# Stripe's documented test card numbers (docs.stripe.com/testing), by brand.
PUBLISHED_TEST_CARDS = {
    "visa": "4242424242424242",
    "visa debit": "4000056655665556",
    "visa 3-D Secure": "4000002500003155",
    "visa refund fails": "4000000000005126",
    "mastercard": "5555555555554444",
    "mastercard 2-series": "2223003122003222",
    "mastercard debit": "5200828282828210",
    "mastercard prepaid": "5105105105105100",
    "amex": "378282246310005",
    "amex 2": "371449635398431",
    "discover": "6011111111111117",
    "discover 2": "6011000990139424",
    "discover debit": "6011981111111113",
    "diners": "3056930009020004",
    "diners 14-digit": "36227206271667",
    "jcb": "3566002020360505",
    "unionpay": "6200000000000005",
    "unionpay 19-digit": "6205500000000000004",
}

# Each is a published card with its check digit changed (Luhn catches every single
# wrong digit), so none is a card number. The doubled 9s in these are the digits a
# Luhn that counts 2 x 9 as 0 instead of 9 gets wrong: such a check accepts them.
# Worked by hand for the first: 6011000990139422 reversed is 2249310990001106;
# doubling every second digit (9 -> 18 -> 9) gives 19 + 29 = 48, not a multiple of 10.
NOT_CARD_NUMBERS = {
    "discover 2, wrong check digit": "6011000990139422",
    "amex 2, wrong check digit": "371449635398430",
    "discover debit, wrong check digit": "6011981111111112",
    "diners, wrong check digit": "3056930009020003",
    "visa, wrong check digit": "4242424242424241",
}

# ISO/IEC 7812 Luhn: a doubled digit d counts as the digit sum of 2 * d.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def check_digit(body: str) -> str:
    """The digit that makes `body` + digit pass the Luhn check."""
    total = sum(
        _DOUBLED[int(digit)] if position % 2 == 0 else int(digit)
        for position, digit in enumerate(reversed(body))
    )
    return str(-total % 10)


def luhn_cards() -> st.SearchStrategy[str]:
    """13 to 19 digit numbers with a correct check digit."""
    bodies = st.integers(min_value=12, max_value=18).flatmap(
        lambda n: st.text(alphabet=string.digits, min_size=n, max_size=n)
    )
    return bodies.map(lambda body: body + check_digit(body))
