//! Exact amounts in the lake: `DECIMAL(38, 18)`, held by polars as 128-bit
//! integers of 10⁻¹⁸ ("units").
//!
//! Eighteen places keep every amount AWS writes (its files carry at most
//! about ten) and leave twenty digits before the point. Floats from a file
//! are read through their shortest round-trip spelling, which is what the
//! file's writer meant: `0.1` is one tenth, not `0.1000000000000000055…`.

use polars::prelude::DataType;
use rust_decimal::Decimal;

/// Digits in all.
pub const PRECISION: usize = 38;
/// Digits after the point.
pub const SCALE: u32 = 18;
/// One unit of currency, in units of 10⁻¹⁸.
pub const ONE: i128 = 1_000_000_000_000_000_000;
/// The largest magnitude of an amount read, in units: the domain's
/// `MAX_AMOUNT` (10¹⁵), well inside what `DECIMAL(38, 18)` holds (10²⁰).
pub(crate) const LIMIT: i128 = tally_domain::MAX_AMOUNT_UNITS as i128 * ONE;

/// Why an amount is refused: out of the domain's range.
pub(crate) fn out_of_range(what: impl std::fmt::Display) -> String {
    format!("{what} is out of range for an amount ({})", tally_domain::AMOUNT_RANGE)
}

/// The lake's type for money.
pub fn money_type() -> DataType {
    DataType::Decimal(PRECISION, SCALE as usize)
}

/// Parses decimal text (`-12.5`, `1.5E-7`, `3`, `.25`) into units of 10⁻¹⁸,
/// rounding half away from zero beyond eighteen places.
pub fn parse_units(text: &str) -> Result<i128, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a number");
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let exponent: i64 = match exponent {
        Some(e) if !e.is_empty() && e.len() <= 6 => e.parse().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
        None => 0,
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // All digits, and the power of ten that scales them to units.
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').skip_while(|d| *d == 0).collect();
    let shift = exponent - frac_part.len() as i64 + i64::from(SCALE);
    let out_of_range = || out_of_range(format!("{text:?}"));
    let mut units: i128 = 0;
    if shift >= 0 {
        if digits.len() as i64 + shift > PRECISION as i64 {
            return Err(out_of_range());
        }
        for d in &digits {
            units = units * 10 + i128::from(*d);
        }
        units *= 10i128.pow(shift as u32);
    } else {
        let keep = digits.len() as i64 + shift;
        if keep > PRECISION as i64 {
            return Err(out_of_range());
        }
        if keep >= 0 {
            let keep = keep as usize;
            for d in &digits[..keep] {
                units = units * 10 + i128::from(*d);
            }
            if digits.get(keep).is_some_and(|d| *d >= 5) {
                units += 1;
            }
        }
    }
    if units > LIMIT {
        return Err(out_of_range());
    }
    Ok(if negative { -units } else { units })
}

/// A float as the units its shortest round-trip spelling names.
pub fn f64_units(v: f64) -> Result<i128, String> {
    if !v.is_finite() {
        return Err(format!("{v} is not a finite number"));
    }
    let mut buf = ryu::Buffer::new();
    parse_units(buf.format_finite(v))
}

/// [`f64_units`] with a small cache: a bill repeats its rates and amounts
/// (every instance-hour of a type costs the same), so most floats of a
/// column were converted a few rows earlier.
#[derive(Debug)]
pub struct FloatUnits {
    slots: Vec<(u64, i128)>,
}

impl Default for FloatUnits {
    fn default() -> Self {
        // A bit pattern no finite float has, so that an empty slot never matches.
        Self { slots: vec![(u64::MAX, 0); 4096] }
    }
}

impl FloatUnits {
    pub fn units(&mut self, v: f64) -> Result<i128, String> {
        let bits = v.to_bits();
        let slot = ((bits ^ (bits >> 29) ^ (bits >> 47)) as usize) & (self.slots.len() - 1);
        if self.slots[slot].0 == bits {
            return Ok(self.slots[slot].1);
        }
        let u = f64_units(v)?;
        self.slots[slot] = (bits, u);
        Ok(u)
    }
}

/// A decimal as units, rounding half away from zero beyond eighteen places.
pub fn units_of(d: Decimal) -> Result<i128, String> {
    let scale = d.scale();
    let m = d.mantissa();
    if scale <= SCALE {
        m.checked_mul(10i128.pow(SCALE - scale)).filter(|u| u.abs() <= LIMIT).ok_or_else(|| out_of_range(d))
    } else {
        let div = 10i128.pow(scale - SCALE);
        let (q, r) = (m / div, m % div);
        Ok(if r.abs() * 2 >= div { q + m.signum() } else { q })
    }
}

/// Units as a decimal: exact where `rust_decimal` can hold the value at
/// eighteen places (below about 7.9 × 10¹⁰); beyond that, rounded to as
/// many places as fit.
pub fn decimal_of(units: i128) -> Decimal {
    let mut v = units;
    let mut scale = SCALE;
    loop {
        if let Ok(d) = Decimal::try_from_i128_with_scale(v, scale) {
            return d.normalize();
        }
        // Drop one place, rounding half away from zero.
        let (q, r) = (v / 10, v % 10);
        v = if r.abs() >= 5 { q + v.signum() } else { q };
        scale -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn text_is_read_exactly_in_every_spelling() {
        assert_eq!(parse_units("0.1").unwrap(), ONE / 10);
        assert_eq!(parse_units("-12.5").unwrap(), -12 * ONE - ONE / 2);
        assert_eq!(parse_units("1.5E-7").unwrap(), 150_000_000_000);
        assert_eq!(parse_units(" 3 ").unwrap(), 3 * ONE);
        assert_eq!(parse_units(".25").unwrap(), ONE / 4);
        assert_eq!(parse_units("0.00000080000").unwrap(), 800_000_000_000);
        assert_eq!(parse_units("1e3").unwrap(), 1000 * ONE);
    }

    #[test]
    fn digits_beyond_eighteen_places_round_half_away_from_zero() {
        assert_eq!(parse_units("0.0000000000000000015").unwrap(), 2);
        assert_eq!(parse_units("-0.0000000000000000015").unwrap(), -2);
        assert_eq!(parse_units("0.0000000000000000014").unwrap(), 1);
        assert_eq!(parse_units("1e-30").unwrap(), 0);
    }

    #[test]
    fn text_that_is_not_a_number_or_too_large_is_refused() {
        for bad in ["", "12,5", "1.2.3", "abc", "--1", "1e", ".", "1e9999999"] {
            assert!(parse_units(bad).is_err(), "{bad:?}");
        }
        assert!(parse_units("123456789012345678901").unwrap_err().contains("out of range"));
        // The domain's largest amount, 10^15, and not a hair more.
        assert!(parse_units("1000000000000000").is_ok());
        assert!(parse_units("-1000000000000000").is_ok());
        assert!(parse_units("1000000000000000.000000000000000001").unwrap_err().contains(tally_domain::AMOUNT_RANGE));
        assert!(parse_units("79228162514264337593543950335").is_err());
    }

    #[test]
    fn floats_are_read_as_the_decimal_they_spell() {
        assert_eq!(f64_units(0.1).unwrap(), ONE / 10);
        assert_eq!(decimal_of(f64_units(22.3369863).unwrap()), d("22.3369863"));
        assert_eq!(decimal_of(f64_units(4.17e-11).unwrap()), d("0.0000000000417"));
        assert_eq!(decimal_of(f64_units(12345.67).unwrap()), d("12345.67"));
        assert!(f64_units(f64::NAN).is_err());
    }

    #[test]
    fn the_cache_gives_what_the_conversion_gives() {
        let mut cache = FloatUnits::default();
        for v in [0.192, 0.1, 0.192, -3.5, 1e-11, 0.192, f64::from_bits(u64::MAX - 1).abs().min(1.0)] {
            assert_eq!(cache.units(v).unwrap(), f64_units(v).unwrap(), "{v}");
        }
        assert!(cache.units(f64::NAN).is_err());
    }

    #[test]
    fn units_and_decimals_round_trip() {
        for s in ["0", "1.23", "-0.000001", "79228162514.264337593"] {
            assert_eq!(decimal_of(units_of(d(s)).unwrap()), d(s).normalize(), "{s}");
        }
        // Beyond what rust_decimal holds at 18 places: fewer places, rounded.
        let near_the_limit = "999999999999999.1234567891234567";
        assert!((decimal_of(parse_units(near_the_limit).unwrap()) - d(near_the_limit)).abs() < d("0.000000000001"));
    }
}
