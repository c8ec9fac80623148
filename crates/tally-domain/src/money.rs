use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Active ISO 4217 currency codes and their number of minor-unit digits.
#[rustfmt::skip]
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2), ("BYN", 2),
    ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2), ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2),
    ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2),
    ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2),
    ("GIP", 2), ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2),
    ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0),
    ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2),
    ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2),
    ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2),
    ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2),
    ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2),
    ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2),
    ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2),
    ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("UYU", 2), ("UZS", 2), ("VES", 2),
    ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0),
    ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// An ISO 4217 currency code (USD, EUR, JPY, ...), known to the standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u32,
}

impl Currency {
    pub const USD: Currency = Currency { code: *b"USD", minor_units: 2 };

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let upper = value.trim().to_ascii_uppercase();
        ISO_4217
            .iter()
            .find(|(code, _)| *code == upper)
            .map(|(code, minor)| {
                let b = code.as_bytes();
                Currency { code: [b[0], b[1], b[2]], minor_units: *minor }
            })
            .ok_or_else(|| ValidationError::new("currency", value, "an active ISO 4217 code such as USD or EUR"))
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ASCII code")
    }

    /// Digits after the decimal point in an invoice amount: 2 for USD, 0 for JPY.
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// Two amounts in different currencies were combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot combine {left} and {right} amounts without an exchange rate")]
pub struct CurrencyMismatch {
    pub left: Currency,
    pub right: Currency,
}

/// The largest magnitude of any one amount Tally takes in, from a file, the
/// API or the configuration: 10¹⁵ (a thousand trillion) in the currency's
/// units. A bill line, a revenue entry or a cash balance beyond it is an
/// error naming the field. Sums of billions of such amounts stay far inside
/// what `Decimal` holds (about 7.9 × 10²⁸), so no report can overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);
/// [`MAX_AMOUNT`] in whole units, for code that counts in integers.
pub const MAX_AMOUNT_UNITS: i64 = 1_000_000_000_000_000;
/// What an amount out of range is told it should be.
pub const AMOUNT_RANGE: &str = "an amount of at most 1,000,000,000,000,000 in magnitude";

/// `amount` if its magnitude is at most [`MAX_AMOUNT`]; else an error naming `field`.
pub fn check_amount(field: &'static str, amount: Decimal) -> Result<Decimal, ValidationError> {
    if amount.abs() > MAX_AMOUNT {
        return Err(ValidationError::new(field, amount, AMOUNT_RANGE));
    }
    Ok(amount)
}

/// An exact amount of money in one currency.
///
/// Arithmetic is checked: combining two currencies is a [`CurrencyMismatch`],
/// never an implicit conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self { amount: Decimal::ZERO, currency }
    }

    /// Parses an amount, refusing one beyond [`MAX_AMOUNT`].
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, ValidationError> {
        let amount = Decimal::from_str_exact(amount.trim())
            .or_else(|_| Decimal::from_scientific(amount.trim()))
            .map_err(|_| ValidationError::new("amount", amount, "a decimal number such as 1234.56"))?;
        Ok(Self { amount: check_amount("amount", amount)?, currency })
    }

    pub fn checked_add(self, other: Money) -> Result<Money, CurrencyMismatch> {
        self.same_currency(other)?;
        Ok(Money { amount: self.amount + other.amount, currency: self.currency })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, CurrencyMismatch> {
        self.same_currency(other)?;
        Ok(Money { amount: self.amount - other.amount, currency: self.currency })
    }

    /// Sums amounts of one currency; an empty sum is zero in `currency`.
    pub fn sum<I: IntoIterator<Item = Money>>(currency: Currency, items: I) -> Result<Money, CurrencyMismatch> {
        items.into_iter().try_fold(Money::zero(currency), Money::checked_add)
    }

    /// Rounded to the currency's minor unit, half away from zero, as invoices are.
    pub fn round_to_minor(self) -> Money {
        Money { amount: self.amount.round_dp_with_strategy(self.currency.minor_units, RoundingStrategy::MidpointAwayFromZero), currency: self.currency }
    }

    fn same_currency(self, other: Money) -> Result<(), CurrencyMismatch> {
        if self.currency == other.currency { Ok(()) } else { Err(CurrencyMismatch { left: self.currency, right: other.currency }) }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = self.round_to_minor();
        write!(f, "{} {:.*}", self.currency, self.currency.minor_units as usize, rounded.amount)
    }
}

/// An amount of `currency` (an ISO 4217 code) as people read it, at the
/// currency's minor units: `$1,234.56`, `1,235 JPY`, `1.235 BHD`.
pub fn format_money(amount: Decimal, currency: &str) -> String {
    let dp = Currency::parse(currency).map_or(2, |c| c.minor_units());
    format_amount(amount, currency, dp)
}

/// An amount as people read it on a page or a chart: rounded half away from
/// zero to `dp` decimals, thousands grouped, the symbol in front for USD, EUR
/// and GBP (`-$1,234.56`) and the code after for other currencies (`1,234 JPY`).
pub fn format_amount(amount: Decimal, currency: &str, dp: u32) -> String {
    let r = amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    let sign = if r.is_sign_negative() && !r.is_zero() { "-" } else { "" };
    let text = format!("{:.*}", dp as usize, r.abs());
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3 + 4);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if let Some(frac) = frac {
        grouped.push('.');
        grouped.push_str(frac);
    }
    match currency_symbol(currency) {
        "" => format!("{sign}{grouped} {currency}"),
        symbol => format!("{sign}{symbol}{grouped}"),
    }
}

/// `$`, `€` or `£`; empty for currencies written by their code.
pub fn currency_symbol(currency: &str) -> &'static str {
    match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::dec;

    #[test]
    fn amounts_for_people_are_grouped_signed_before_the_symbol_and_rounded_half_away_from_zero() {
        assert_eq!(format_amount(dec("1234567.891"), "USD", 2), "$1,234,567.89");
        assert_eq!(format_amount(dec("-42.5"), "USD", 0), "-$43");
        assert_eq!(format_amount(dec("-0.001"), "USD", 2), "$0.00");
        assert_eq!(format_amount(dec("999.995"), "EUR", 2), "€1,000.00");
        assert_eq!(format_amount(dec("1500"), "JPY", 0), "1,500 JPY");
        assert_eq!(format_amount(dec("12"), "GBP", 2), "£12.00");
    }

    #[test]
    fn money_is_shown_at_its_currencys_minor_units() {
        assert_eq!(format_money(dec("1234.5"), "USD"), "$1,234.50");
        assert_eq!(format_money(dec("1234.5"), "JPY"), "1,235 JPY");
        assert_eq!(format_money(dec("1.2345"), "BHD"), "1.235 BHD");
        assert_eq!(format_money(dec("-7"), "EUR"), "-€7.00");
    }

    /// `rust_decimal_macros` would be one more dependency for tests only.
    mod rust_decimal_macros_free {
        pub fn dec(s: &str) -> rust_decimal::Decimal {
            s.parse().unwrap()
        }
    }

    #[test]
    fn amounts_beyond_a_thousand_trillion_are_refused_by_name() {
        assert_eq!(MAX_AMOUNT, Decimal::from(MAX_AMOUNT_UNITS));
        assert!(Money::parse("1000000000000000", Currency::USD).is_ok());
        assert!(Money::parse("-1000000000000000", Currency::USD).is_ok());
        let e = Money::parse("1000000000000000.01", Currency::USD).unwrap_err();
        assert_eq!(e.what, "amount");
        assert!(Money::parse("79228162514264337593543950335", Currency::USD).is_err());
        assert!(Money::parse("1e20", Currency::USD).is_err());
        assert_eq!(check_amount("cash", dec("-5")).unwrap(), dec("-5"));
    }

    #[test]
    fn known_currency_codes_parse_case_insensitively() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
    }

    #[test]
    fn an_unknown_currency_code_is_rejected() {
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn adding_amounts_in_one_currency_is_exact() {
        let a = Money::parse("0.1", Currency::USD).unwrap();
        let b = Money::parse("0.2", Currency::USD).unwrap();
        assert_eq!(a.checked_add(b).unwrap().amount, dec("0.3"));
    }

    #[test]
    fn adding_amounts_in_different_currencies_is_an_error() {
        let usd = Money::parse("1", Currency::USD).unwrap();
        let eur = Money::parse("1", Currency::parse("EUR").unwrap()).unwrap();
        let err = usd.checked_add(eur).unwrap_err();
        assert_eq!(err.to_string(), "cannot combine USD and EUR amounts without an exchange rate");
        assert!(usd.checked_sub(eur).is_err());
        assert!(Money::sum(Currency::USD, [usd, eur]).is_err());
    }

    #[test]
    fn rounding_to_cents_is_half_away_from_zero() {
        assert_eq!(Money::parse("2.345", Currency::USD).unwrap().round_to_minor().amount, dec("2.35"));
        assert_eq!(Money::parse("-2.345", Currency::USD).unwrap().round_to_minor().amount, dec("-2.35"));
        let yen = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse("100.5", yen).unwrap().round_to_minor().amount, dec("101"));
    }

    #[test]
    fn money_displays_with_the_currency_minor_units() {
        assert_eq!(Money::parse("1234.5", Currency::USD).unwrap().to_string(), "USD 1234.50");
    }

    #[test]
    fn amounts_in_scientific_notation_are_read_exactly() {
        assert_eq!(Money::parse("1.5E-7", Currency::USD).unwrap().amount, dec("0.00000015"));
        assert!(Money::parse("abc", Currency::USD).is_err());
    }

    #[test]
    fn money_serialises_its_amount_as_a_string() {
        let m = Money::parse("10.10", Currency::USD).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"amount":"10.10","currency":"USD"}"#);
    }
}
