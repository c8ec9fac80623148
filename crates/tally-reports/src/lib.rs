//! Reports, exports and charts: what people read, computed from stored
//! allocation results, revenue and configuration.
//!
//! Architecture invariants:
//! - Pure functions of their inputs: no database, no HTTP, no clock (the
//!   caller passes "today"). Reading a report never recomputes an allocation.
//! - Money is `Decimal` throughout; sums of rounded rows stay exact, so a
//!   report's total equals the bill to the cent.
//! - Exports are safe to open in a spreadsheet: text cells that could start
//!   a formula are neutralised, numbers stay numbers.
//! - Charts take these reports' figures and draw them; amounts written on a
//!   chart come from the exact figures, never from the drawing's floats.
//!
//! Entry points: [`costs`], [`tenant`], [`burn`], [`reconciliation`],
//! [`export`], [`charts`].

pub mod burn;
pub mod charts;
pub mod costs;
pub mod export;
pub mod focus;
pub mod reconciliation;
pub mod tenant;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

/// A labelled amount, e.g. a pool and what a tenant pays for it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NamedAmount {
    pub name: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// Rounds to cents for display and division results (half away from zero).
pub(crate) fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// `a / b` rounded to cents, or `None` when `b` is zero.
pub(crate) fn ratio(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    if b.is_zero() { None } else { Some((a / b).round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)) }
}
