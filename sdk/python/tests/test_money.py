import unittest
from decimal import Decimal as D

from recharge_policy import charge_key, decode_fields, encode_fields, parse_counter
from recharge_policy.money import (
    allocation_price,
    display,
    exact,
    format,
    from_parts,
    from_wit_parts,
    is_whole_cents,
    minutes_bought,
    parse,
    to_parts,
    to_wit_parts,
    to_wit_parts_exact,
    try_parse,
    whole_cents_up,
)
from recharge_policy.model import Rates

MAX = (1 << 63) - 1


class MoneyTest(unittest.TestCase):
    def test_parse_keeps_the_scale_and_refuses_what_is_not_a_decimal(self):
        self.assertEqual(to_parts(parse("10.00")), (1000, 2))
        self.assertEqual(to_parts(parse("-0.5")), (-5, 1))
        self.assertEqual(to_parts(parse("+7")), (7, 0))
        for text in ["", "-", ".", "1e5", "1_000", " 1", "0." + "1" * 29, "١", "NaN"]:
            self.assertIsNone(try_parse(text), text)

    def test_format_writes_every_digit_at_the_scale(self):
        for parts, shown in [((1000, 2), "10.00"), ((5, 3), "0.005"), ((-5, 2), "-0.05"), ((0, 2), "0.00"), ((-3, 0), "-3")]:
            self.assertEqual(format(from_parts(*parts)), shown)
        self.assertEqual(format(D("-0.00")), "0.00")
        self.assertEqual(format(D("1E+2")), "100")

    def test_display_shows_at_least_cents_and_no_trailing_zeros_beyond(self):
        for value, shown in [
            ("17", "17.00"),
            ("0.1627", "0.1627"),
            ("-3.5", "-3.50"),
            ("-0.0015", "-0.0015"),
            ("0", "0.00"),
            ("1000.10", "1000.10"),
            ("12.3400", "12.34"),
            ("79228162514264337593543950.335", "79228162514264337593543950.335"),
        ]:
            self.assertEqual(display(D(value)), shown, value)

    def test_whole_cents_up_never_falls_short_and_keeps_short_scales(self):
        with exact():
            self.assertEqual(to_parts(whole_cents_up(D("12.3401"))), (1235, 2))
            self.assertEqual(to_parts(whole_cents_up(D("40"))), (40, 0))
            self.assertEqual(format(whole_cents_up(D("-0.005"))), "0.00")
            self.assertEqual(format(whole_cents_up(D("50.00") - D("7.3333"))), "42.67")
            self.assertEqual(format(whole_cents_up(from_parts(1, 25))), "0.01")

    def test_whole_cents(self):
        self.assertTrue(is_whole_cents(D("10.10")))
        self.assertTrue(is_whole_cents(D("10.1000")))
        self.assertFalse(is_whole_cents(D("10.001")))

    def test_exact_arithmetic_has_no_28_digit_limit(self):
        big, tiny = from_parts(MAX, 0), from_parts(1, 28)
        with exact():
            self.assertEqual(to_parts(big - tiny), (MAX * 10**28 - 1, 28))

    def test_the_default_estimate_and_minute_quote_match_the_rust_sdk(self):
        rates = Rates(D("0.09"), D("0.16"))
        self.assertEqual(display(allocation_price(100, 50, rates)), "17.00")
        self.assertEqual(minutes_bought(D("1.00"), D("0.16")), 6)
        self.assertEqual(minutes_bought(D("1.00"), D("0")), 0)

    def test_contract_decimals(self):
        self.assertEqual(to_parts(from_wit_parts(123456, 30)), (1234, 28))
        self.assertEqual(to_parts(from_wit_parts(-123456, 30)), (-1234, 28))
        self.assertIsNone(to_wit_parts_exact(from_parts(1 << 63, 0)))
        # ...807.5 rounds to even, ...808, which does not fit either: saturated.
        self.assertEqual(to_wit_parts(from_parts(92233720368547758075, 1)), (MAX, 0))
        self.assertEqual(to_wit_parts(from_parts(92233720368547758065, 1)), (9223372036854775806, 0))
        self.assertEqual(to_wit_parts(from_parts(-(1 << 80), 0)), (-(1 << 63), 0))

    def test_keys_fields_and_counters(self):
        self.assertEqual(charge_key("weekday", 3), "weekday/3")
        self.assertEqual(charge_key("alloc", 1, 2, 0), "alloc/1/2/0")
        self.assertEqual(decode_fields(encode_fields(["v1", 2, True, D("1.50"), "a|b"]), 5), ["v1", "2", "1", "1.50", "a|b"])
        self.assertIsNone(decode_fields(b"\xff"))
        self.assertEqual(decode_fields(b"\xef\xbb\xbfa"), ["\ufeffa"])
        self.assertEqual(parse_counter("+7"), 7)
        self.assertIsNone(parse_counter("18446744073709551616"))
        self.assertIsNone(parse_counter("-1"))


if __name__ == "__main__":
    unittest.main()
