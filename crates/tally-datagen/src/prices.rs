//! us-east-1 on-demand list prices of the reference deployment, USD.

/// (what, price, unit) as the generator charges them.
pub const LIST_PRICES: &[(&str, f64, &str)] = &[
    ("m5.xlarge instance", M5_XLARGE_HOUR, "per hour"),
    ("EKS cluster", EKS_CLUSTER_HOUR, "per hour"),
    ("db.r6g.xlarge PostgreSQL Multi-AZ", RDS_R6G_XLARGE_MAZ_HOUR, "per hour"),
    ("gp3 storage Multi-AZ (RDS)", RDS_GP3_MAZ_GB_MONTH, "per GB-month"),
    ("cache.r6g.large", CACHE_R6G_LARGE_HOUR, "per hour"),
    ("ALB", ALB_HOUR, "per hour"),
    ("ALB LCU", ALB_LCU_HOUR, "per LCU-hour"),
    ("data transfer out to the internet", TRANSFER_OUT_GB, "per GB"),
    ("EBS gp3", EBS_GP3_GB_MONTH, "per GB-month"),
    ("S3 Standard storage", S3_STANDARD_GB_MONTH, "per GB-month"),
    ("S3 PUT/COPY/POST/LIST requests", S3_TIER1_PER_1000, "per 1,000 requests"),
    ("CloudWatch custom metrics", CW_METRIC_MONTH, "per metric-month"),
    ("CloudWatch Logs ingestion", CW_LOGS_GB, "per GB"),
];

pub(crate) const M5_XLARGE_HOUR: f64 = 0.192;
pub(crate) const M5_XLARGE_VCPU: f64 = 4.0;
pub(crate) const M5_XLARGE_GIB: f64 = 16.0;
pub(crate) const EKS_CLUSTER_HOUR: f64 = 0.10;
pub(crate) const RDS_R6G_XLARGE_MAZ_HOUR: f64 = 0.898;
pub(crate) const RDS_GP3_MAZ_GB_MONTH: f64 = 0.23;
pub(crate) const RDS_BACKUP_GB_MONTH: f64 = 0.095;
pub(crate) const CACHE_R6G_LARGE_HOUR: f64 = 0.206;
pub(crate) const ALB_HOUR: f64 = 0.0225;
pub(crate) const ALB_LCU_HOUR: f64 = 0.008;
pub(crate) const TRANSFER_OUT_GB: f64 = 0.09;
pub(crate) const EBS_GP3_GB_MONTH: f64 = 0.08;
pub(crate) const S3_STANDARD_GB_MONTH: f64 = 0.023;
pub(crate) const S3_TIER1_PER_1000: f64 = 0.005;
pub(crate) const CW_METRIC_MONTH: f64 = 0.30;
pub(crate) const CW_LOGS_GB: f64 = 0.50;
/// Sales tax on the taxable services.
pub(crate) const TAX_RATE: f64 = 0.0625;
