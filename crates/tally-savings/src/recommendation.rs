//! Cost Explorer's own purchase recommendations, as Tally keeps them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalogue::{Payment, Service, Term};

/// What Cost Explorer recommends buying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecommendationKind {
    /// Reserved Instances (or nodes) of one type.
    Reservation {
        service: Service,
        region: Option<String>,
        instance_type: String,
        /// Engine and deployment for RDS, engine for ElastiCache, platform for EC2.
        variant: Option<String>,
        count: Decimal,
        /// Cost Explorer's view of the usage over its look-back.
        average_running: Option<Decimal>,
        minimum_running: Option<Decimal>,
    },
    /// A Compute Savings Plan.
    SavingsPlan { hourly_commitment: Decimal },
}

/// One recommendation, as Cost Explorer estimates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendation {
    #[serde(flatten)]
    pub kind: RecommendationKind,
    pub term: Term,
    pub payment: Payment,
    pub lookback_days: u32,
    pub upfront: Decimal,
    pub recurring_monthly: Decimal,
    pub estimated_monthly_savings: Decimal,
    /// 0..1.
    pub estimated_savings_share: Option<Decimal>,
    pub estimated_monthly_on_demand: Option<Decimal>,
    pub break_even_months: Option<Decimal>,
    /// 0..1.
    pub expected_utilization: Option<Decimal>,
    pub currency: String,
}

/// The recommendations of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub collected_at: DateTime<Utc>,
    pub lookback_days: u32,
    pub items: Vec<Recommendation>,
    /// The look-ups made (service, term, payment), including those that recommended nothing.
    pub queries: Vec<String>,
}
