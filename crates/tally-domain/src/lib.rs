//! Tally's vocabulary: the types every other crate speaks.
//!
//! Architecture invariants:
//! - This crate depends on no other Tally crate and knows no I/O: no SQL, no
//!   HTTP, no AWS SDK, no polars, no environment. Other crates point toward it.
//! - Every type is validated at construction (`parse`/`new`), so a value of the
//!   type is always valid: a [`TenantId`] is a slug, a [`Period`] is aligned
//!   and half-open, a [`Money`] carries its [`Currency`].
//! - Money is exact: [`rust_decimal::Decimal`], never floating point. Adding
//!   amounts in different currencies is an error, not a conversion.
//!
//! Entry points: [`Config`] (the whole `tally.toml`), [`CostLine`],
//! [`UsageSample`], [`RevenueEntry`], [`AllocationRow`].

mod allocation;
mod aws_services;
mod clock;
mod config;
mod cost;
pub mod delivery;
mod error;
mod money;
mod period;
mod ports;
mod redact;
mod revenue;
mod tenant;
mod usage;

pub use allocation::{Allocatee, AllocationRow, Explanation, PoolId, UnallocatedReason};
pub use aws_services::{AWS_SERVICES, AwsService, aws_service, aws_service_code};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AllocationConfig, CloudWatchConfig, CloudWatchQuery, CollectorsConfig, Config, ConfigError, CostExplorerConfig, DatabaseConfig, FinanceConfig, IdlePolicy,
    InstanceCapacity, MONTHLY_COSTS_DOCUMENT, MonthlyCost, PoolMethod, PoolRule, PostgresCollectorConfig, RedisCollectorConfig, SavingsConfig, ScheduleConfig,
    ServerConfig, SharedPolicy, StorageConfig, TenantConfig,
};
pub use cost::{CostLine, CostSource, LineType};
pub use error::ValidationError;
pub use money::{AMOUNT_RANGE, Currency, CurrencyMismatch, MAX_AMOUNT, MAX_AMOUNT_UNITS, Money, check_amount, currency_symbol, format_amount, format_money};
pub use period::{END_INSTANT_MS, FIRST_INSTANT_MS, Granularity, Month, Period, check_instant};
pub use ports::{AllocationFailure, AllocationOutcome, AllocationTrigger, JobOutcome, JobRun};
pub use redact::redact;
pub use revenue::RevenueEntry;
pub use tenant::{Tenant, TenantId};
pub use usage::{Metric, UsageSample};

/// Re-exported so that every crate uses the same decimal type.
pub use rust_decimal::Decimal;
