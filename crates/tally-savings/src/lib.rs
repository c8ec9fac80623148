//! What a Reserved Instance or a Savings Plan would save: the price catalogue
//! and the projection from billed instance-hours.
//!
//! Architecture invariants:
//! - Pure computation over domain types: no SQL, no HTTP, no AWS SDK, no
//!   polars, no environment. Callers hand in cost lines and a catalogue; the
//!   result is a value that the CLI prints and the API serves.
//! - Money is exact ([`rust_decimal::Decimal`]) from the price lists to the
//!   projected savings; hour counts are whole numbers of normalised units.
//! - Every price carries the date of the price list it came from, and every
//!   projection row repeats it, so nobody acts on a price without knowing its age.
//!
//! Entry points: [`PriceCatalogue`] (bundled snapshot, [`offer`] files from the
//! AWS Price List), [`project`] (the projection), [`Recommendation`] (Cost
//! Explorer's own view, collected elsewhere, compared in [`compare`]).

mod catalogue;
mod compare;
mod family;
pub mod offer;
mod projection;
mod recommendation;
mod report;

pub use catalogue::{CatalogueError, InstancePrice, Payment, PriceCatalogue, PriceSource, ReservedPrice, SavingsPlanRate, Service, Term};
pub use compare::{Comparison, compare};
pub use family::{Family, normalization_factor};
pub use projection::{
    ExistingCommitment, FamilyProjection, HOURS_PER_MONTH, HourlyProfile, Projection, ProjectionParams, ReservationOption, SavingsPlanOption,
    SavingsPlanProjection, Summary, TypeHours, project,
};
pub use recommendation::{Recommendation, RecommendationKind, Recommendations};
pub use report::{Estimate, EstimateCheck, SavingsReport, report_document};
