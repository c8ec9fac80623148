//! Largest-remainder rounding: a group's rounded shares add up to the
//! group's rounded total exactly.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Rounds `amounts` to `minor` decimal places so that they sum to `target`
/// (already rounded to `minor` places).
///
/// Each amount is first taken at nano-units (1e-9) to shed floating-point
/// noise, then floored to the minor unit; the cents still missing go, one
/// each, to the largest remainders (ties to the earlier amount), and cents
/// in excess come off the smallest remainders. Amounts are assumed to sum
/// to about `target`; a larger gap is spread the same way, evenly.
pub(crate) fn largest_remainder(amounts: &[f64], target: Decimal, minor: u32) -> Vec<Decimal> {
    const NANO: i128 = 1_000_000_000;
    let unit: i128 = NANO / 10i128.pow(minor);
    let mut floors = Vec::with_capacity(amounts.len());
    let mut rems = Vec::with_capacity(amounts.len());
    for a in amounts {
        let nanos = (a * NANO as f64).round() as i128;
        let f = nanos.div_euclid(unit);
        floors.push(f);
        rems.push(nanos.rem_euclid(unit));
    }
    let target_units = (target * Decimal::from(10i64.pow(minor))).round().to_i128().expect("a total within i128");
    let mut residual = target_units - floors.iter().sum::<i128>();
    if !amounts.is_empty() && residual != 0 {
        let n = amounts.len() as i128;
        // A residual beyond one unit per amount: spread the whole units evenly first.
        let whole = if residual > 0 { residual / n } else { -((-residual) / n) };
        if whole != 0 {
            for f in &mut floors {
                *f += whole;
            }
            residual -= whole * n;
        }
        let mut order: Vec<usize> = (0..amounts.len()).collect();
        if residual > 0 {
            order.sort_by(|a, b| rems[*b].cmp(&rems[*a]).then(a.cmp(b)));
            for i in order.into_iter().take(residual as usize) {
                floors[i] += 1;
            }
        } else if residual < 0 {
            order.sort_by(|a, b| rems[*a].cmp(&rems[*b]).then(b.cmp(a)));
            for i in order.into_iter().take((-residual) as usize) {
                floors[i] -= 1;
            }
        }
    }
    floors.into_iter().map(|f| Decimal::from_i128_with_scale(f, minor)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn thirds_of_a_dollar_round_to_34_33_33() {
        let r = largest_remainder(&[1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0], d("1.00"), 2);
        assert_eq!(r, vec![d("0.34"), d("0.33"), d("0.33")]);
    }

    #[test]
    fn the_largest_remainders_get_the_missing_cents() {
        let r = largest_remainder(&[0.104, 0.209, 0.687], d("1.00"), 2);
        assert_eq!(r.iter().sum::<Decimal>(), d("1.00"));
        assert_eq!(r, vec![d("0.10"), d("0.21"), d("0.69")]);
    }

    #[test]
    fn negative_amounts_such_as_credits_round_consistently() {
        let r = largest_remainder(&[-0.334, -0.333, -0.333], d("-1.00"), 2);
        assert_eq!(r.iter().sum::<Decimal>(), d("-1.00"));
        assert!(r.iter().all(|x| *x <= Decimal::ZERO));
    }

    #[test]
    fn excess_cents_come_off_the_smallest_remainders() {
        // Floats that overshoot the exact total by a hair.
        let r = largest_remainder(&[0.505, 0.505], d("1.00"), 2);
        assert_eq!(r.iter().sum::<Decimal>(), d("1.00"));
    }

    #[test]
    fn currencies_without_minor_units_round_to_whole_units() {
        let r = largest_remainder(&[33.4, 33.3, 33.3], d("100"), 0);
        assert_eq!(r, vec![d("34"), d("33"), d("33")]);
    }

    #[test]
    fn a_single_amount_takes_the_whole_target() {
        assert_eq!(largest_remainder(&[12.344999], d("12.35"), 2), vec![d("12.35")]);
    }
}
