//! The price catalogue: on-demand and reserved prices per instance type and
//! Compute Savings Plan rates, each with the date of its price list.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The services whose capacity can be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Service {
    #[serde(rename = "AmazonEC2")]
    Ec2,
    #[serde(rename = "AmazonRDS")]
    Rds,
    #[serde(rename = "AmazonElastiCache")]
    ElastiCache,
}

impl Service {
    /// The AWS product code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ec2 => "AmazonEC2",
            Self::Rds => "AmazonRDS",
            Self::ElastiCache => "AmazonElastiCache",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "AmazonEC2" => Some(Self::Ec2),
            "AmazonRDS" => Some(Self::Rds),
            "AmazonElastiCache" => Some(Self::ElastiCache),
            _ => None,
        }
    }

    /// Whether one reservation covers any size of its family (in
    /// normalised units): EC2 Linux regional RIs and RDS RIs are.
    pub fn size_flexible(self) -> bool {
        matches!(self, Self::Ec2 | Self::Rds)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A commitment's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Term {
    #[serde(rename = "1y")]
    OneYear,
    #[serde(rename = "3y")]
    ThreeYears,
}

impl Term {
    pub const ALL: [Term; 2] = [Term::OneYear, Term::ThreeYears];

    pub fn months(self) -> u32 {
        match self {
            Self::OneYear => 12,
            Self::ThreeYears => 36,
        }
    }

    /// Hours in the term as AWS counts them (365 days a year).
    pub fn hours(self) -> Decimal {
        Decimal::from(8760 * self.months() / 12)
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1y" | "1yr" | "1 yr" | "1 year" | "1" => Some(Self::OneYear),
            "3y" | "3yr" | "3 yr" | "3 years" | "3" => Some(Self::ThreeYears),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneYear => "1y",
            Self::ThreeYears => "3y",
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a commitment is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Payment {
    #[serde(rename = "none")]
    NoUpfront,
    #[serde(rename = "partial")]
    PartialUpfront,
    #[serde(rename = "all")]
    AllUpfront,
}

impl Payment {
    pub const ALL: [Payment; 3] = [Payment::NoUpfront, Payment::PartialUpfront, Payment::AllUpfront];

    /// `none`, `partial`, `all`, or the price list's `No Upfront` spellings.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace(['_', '-'], " ").as_str() {
            "none" | "no upfront" | "no" => Some(Self::NoUpfront),
            "partial" | "partial upfront" => Some(Self::PartialUpfront),
            "all" | "all upfront" => Some(Self::AllUpfront),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoUpfront => "none",
            Self::PartialUpfront => "partial",
            Self::AllUpfront => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::NoUpfront => "No Upfront",
            Self::PartialUpfront => "Partial Upfront",
            Self::AllUpfront => "All Upfront",
        }
    }
}

impl fmt::Display for Payment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reserved offering of an instance type (standard offering class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservedPrice {
    pub term: Term,
    pub payment: Payment,
    /// Paid once at purchase, per instance.
    pub upfront: Decimal,
    /// Charged every hour of the term whether used or not, per instance.
    pub hourly: Decimal,
}

impl ReservedPrice {
    /// The upfront spread over the term's hours plus the hourly charge.
    pub fn effective_hourly(&self) -> Decimal {
        self.hourly + self.upfront / self.term.hours()
    }
}

/// An instance type's prices in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstancePrice {
    pub service: Service,
    pub region: String,
    pub instance_type: String,
    /// `Linux` for EC2, `PostgreSQL Multi-AZ` or `PostgreSQL Single-AZ` for
    /// RDS, `Redis` for ElastiCache.
    pub variant: String,
    pub on_demand_hourly: Decimal,
    pub reserved: Vec<ReservedPrice>,
    /// The publication date of the price list the prices come from.
    pub published: NaiveDate,
}

impl InstancePrice {
    pub fn reserved(&self, term: Term, payment: Payment) -> Option<&ReservedPrice> {
        self.reserved.iter().find(|r| r.term == term && r.payment == payment)
    }
}

/// A Compute Savings Plan's rate for one instance type (Linux, shared tenancy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavingsPlanRate {
    pub region: String,
    pub instance_type: String,
    pub term: Term,
    pub payment: Payment,
    pub hourly: Decimal,
    pub published: NaiveDate,
}

/// Where a part of the catalogue came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceSource {
    /// `AmazonEC2`, `AmazonRDS`, `AmazonElastiCache` or `ComputeSavingsPlans`.
    pub offer: String,
    pub published: NaiveDate,
    /// The file, or `bundled snapshot`.
    pub origin: String,
    /// Caveats a reader of the prices must see.
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: no prices Tally can use ({message})")]
    Empty { file: String, message: String },
}

/// All prices Tally knows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceCatalogue {
    pub sources: Vec<PriceSource>,
    pub instances: Vec<InstancePrice>,
    pub savings_plans: Vec<SavingsPlanRate>,
}

const BUNDLED: &str = include_str!("../prices/snapshot.csv");

#[derive(Deserialize)]
struct SnapshotRow {
    offer: String,
    region: String,
    instance_type: String,
    variant: String,
    term: String,
    payment: String,
    upfront: Decimal,
    hourly: Decimal,
}

impl PriceCatalogue {
    /// The snapshot bundled with Tally (see `prices/snapshot.csv` for its
    /// date and provenance).
    pub fn bundled() -> Self {
        Self::from_snapshot_csv(BUNDLED, "bundled snapshot").expect("the bundled snapshot parses (tested)")
    }

    /// Reads Tally's own snapshot format: `#` header lines with `published:`
    /// and `note:`, then `offer,region,instance_type,variant,term,payment,upfront,hourly`
    /// rows where an empty term is the on-demand price.
    pub fn from_snapshot_csv(text: &str, origin: &str) -> Result<Self, CatalogueError> {
        let err = |message: String| CatalogueError::Parse { file: origin.to_owned(), message };
        let mut published = None;
        let mut note = None;
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            let l = line.trim_start_matches('#').trim();
            if let Some(d) = l.strip_prefix("published:") {
                published = Some(NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|e| err(format!("published date {d:?}: {e}")))?);
            } else if let Some(n) = l.strip_prefix("note:") {
                note = Some(note.map_or_else(|| n.trim().to_owned(), |p: String| format!("{p} {}", n.trim())));
            }
        }
        let published = published.ok_or_else(|| err("no `# published: YYYY-MM-DD` line".into()))?;
        let body: String = text.lines().skip_while(|l| l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        let mut rdr = csv::Reader::from_reader(body.as_bytes());
        let mut instances: BTreeMap<(Service, String, String, String), InstancePrice> = BTreeMap::new();
        let mut savings_plans = Vec::new();
        let mut offers = std::collections::BTreeSet::new();
        for (i, row) in rdr.deserialize::<SnapshotRow>().enumerate() {
            let row = row.map_err(|e| err(format!("row {}: {e}", i + 2)))?;
            let line = i + 2;
            offers.insert(row.offer.clone());
            if row.offer == "ComputeSavingsPlans" {
                let term = Term::parse(&row.term).ok_or_else(|| err(format!("row {line}: term {:?} is not 1y or 3y", row.term)))?;
                let payment = Payment::parse(&row.payment).ok_or_else(|| err(format!("row {line}: payment {:?} is not none, partial or all", row.payment)))?;
                savings_plans.push(SavingsPlanRate { region: row.region, instance_type: row.instance_type, term, payment, hourly: row.hourly, published });
                continue;
            }
            let service = Service::from_code(&row.offer).ok_or_else(|| err(format!("row {line}: unknown offer {:?}", row.offer)))?;
            let entry = instances.entry((service, row.region.clone(), row.instance_type.clone(), row.variant.clone())).or_insert_with(|| InstancePrice {
                service,
                region: row.region.clone(),
                instance_type: row.instance_type.clone(),
                variant: row.variant.clone(),
                on_demand_hourly: Decimal::ZERO,
                reserved: Vec::new(),
                published,
            });
            if row.term.is_empty() {
                entry.on_demand_hourly = row.hourly;
            } else {
                let term = Term::parse(&row.term).ok_or_else(|| err(format!("row {line}: term {:?} is not 1y or 3y", row.term)))?;
                let payment = Payment::parse(&row.payment).ok_or_else(|| err(format!("row {line}: payment {:?} is not none, partial or all", row.payment)))?;
                entry.reserved.push(ReservedPrice { term, payment, upfront: row.upfront, hourly: row.hourly });
            }
        }
        if let Some(p) = instances.values().find(|p| p.on_demand_hourly.is_zero()) {
            return Err(err(format!("{} {} {} has reserved prices but no on-demand price", p.service, p.region, p.instance_type)));
        }
        Ok(Self {
            sources: offers.into_iter().map(|offer| PriceSource { offer, published, origin: origin.to_owned(), note: note.clone() }).collect(),
            instances: instances.into_values().collect(),
            savings_plans,
        })
    }

    /// Replaces what `other` covers (per offer and region) with `other`'s prices.
    pub fn merge(&mut self, other: PriceCatalogue) {
        let regions_of = |offer: &str| -> std::collections::BTreeSet<String> {
            if offer == "ComputeSavingsPlans" {
                other.savings_plans.iter().map(|s| s.region.clone()).collect()
            } else {
                other.instances.iter().filter(|p| p.service.code() == offer).map(|p| p.region.clone()).collect()
            }
        };
        for src in &other.sources {
            let regions = regions_of(&src.offer);
            if src.offer == "ComputeSavingsPlans" {
                self.savings_plans.retain(|s| !regions.contains(&s.region));
            } else {
                self.instances.retain(|p| !(p.service.code() == src.offer && regions.contains(&p.region)));
            }
            self.sources.retain(|s| s.offer != src.offer || s.origin == src.origin && s.published == src.published);
            self.sources.push(src.clone());
        }
        self.instances.extend(other.instances);
        self.savings_plans.extend(other.savings_plans);
        self.instances.sort_by(|a, b| (a.service, &a.region, &a.instance_type, &a.variant).cmp(&(b.service, &b.region, &b.instance_type, &b.variant)));
        self.savings_plans.sort_by(|a, b| (&a.region, &a.instance_type, a.term, a.payment).cmp(&(&b.region, &b.instance_type, b.term, b.payment)));
        self.sources.sort_by(|a, b| a.offer.cmp(&b.offer));
        self.sources.dedup();
    }

    pub fn instance(&self, service: Service, region: &str, instance_type: &str, variant: &str) -> Option<&InstancePrice> {
        self.instances.iter().find(|p| p.service == service && p.region == region && p.instance_type == instance_type && p.variant == variant)
    }

    pub fn savings_plan_rate(&self, region: &str, instance_type: &str, term: Term, payment: Payment) -> Option<&SavingsPlanRate> {
        self.savings_plans.iter().find(|s| s.region == region && s.instance_type == instance_type && s.term == term && s.payment == payment)
    }

    /// The source of an offer's prices, for the date shown beside them.
    pub fn source(&self, offer: &str) -> Option<&PriceSource> {
        self.sources.iter().find(|s| s.offer == offer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_snapshot_covers_the_reference_deployment_and_its_families() {
        let c = PriceCatalogue::bundled();
        let m5 = c.instance(Service::Ec2, "us-east-1", "m5.xlarge", "Linux").expect("m5.xlarge");
        assert_eq!(m5.on_demand_hourly, Decimal::new(192, 3));
        for term in Term::ALL {
            for payment in Payment::ALL {
                assert!(m5.reserved(term, payment).is_some(), "m5.xlarge {term} {payment}");
                assert!(c.savings_plan_rate("us-east-1", "m5.xlarge", term, payment).is_some(), "SP m5.xlarge {term} {payment}");
            }
        }
        for t in ["m5.large", "m5.2xlarge"] {
            assert!(c.instance(Service::Ec2, "us-east-1", t, "Linux").is_some(), "{t}");
        }
        let rds = c.instance(Service::Rds, "us-east-1", "db.r6g.xlarge", "PostgreSQL Multi-AZ").expect("db.r6g.xlarge Multi-AZ");
        assert_eq!(rds.on_demand_hourly, Decimal::new(898, 3));
        assert!(rds.reserved(Term::OneYear, Payment::NoUpfront).is_some());
        assert!(c.instance(Service::Rds, "us-east-1", "db.r6g.large", "PostgreSQL Single-AZ").is_some());
        let cache = c.instance(Service::ElastiCache, "us-east-1", "cache.r6g.large", "Redis").expect("cache.r6g.large");
        assert_eq!(cache.on_demand_hourly, Decimal::new(206, 3));
        assert!(c.instance(Service::ElastiCache, "us-east-1", "cache.r6g.xlarge", "Redis").is_some());
        assert!(c.sources.iter().all(|s| s.note.as_deref().is_some_and(|n| !n.is_empty())), "the snapshot says where its prices come from");
    }

    #[test]
    fn every_reserved_price_in_the_snapshot_is_cheaper_than_on_demand() {
        let c = PriceCatalogue::bundled();
        for p in &c.instances {
            for r in &p.reserved {
                assert!(
                    r.effective_hourly() < p.on_demand_hourly,
                    "{} {} {} {}: {} >= {}",
                    p.instance_type,
                    p.variant,
                    r.term,
                    r.payment,
                    r.effective_hourly(),
                    p.on_demand_hourly
                );
            }
        }
        for s in &c.savings_plans {
            let od = c.instance(Service::Ec2, &s.region, &s.instance_type, "Linux").expect("on-demand price of every SP rate").on_demand_hourly;
            assert!(s.hourly < od, "{} {} {}", s.instance_type, s.term, s.payment);
        }
    }

    #[test]
    fn partial_upfront_amortises_over_the_term_hours() {
        let r = ReservedPrice { term: Term::OneYear, payment: Payment::PartialUpfront, upfront: Decimal::from(876), hourly: Decimal::new(5, 2) };
        assert_eq!(r.effective_hourly(), Decimal::new(15, 2));
        let r3 = ReservedPrice { term: Term::ThreeYears, payment: Payment::AllUpfront, upfront: Decimal::from(2628), hourly: Decimal::ZERO };
        assert_eq!(r3.effective_hourly(), Decimal::new(1, 1));
    }

    #[test]
    fn merging_replaces_only_the_offers_and_regions_imported() {
        let mut c = PriceCatalogue::bundled();
        let before_rds = c.instances.iter().filter(|p| p.service == Service::Rds).count();
        let new = PriceCatalogue::from_snapshot_csv(
            "# published: 2027-01-01\n# note: test\noffer,region,instance_type,variant,term,payment,upfront,hourly\nAmazonEC2,us-east-1,m5.xlarge,Linux,,,0,0.2\n",
            "test.csv",
        )
        .unwrap();
        c.merge(new);
        assert_eq!(c.instances.iter().filter(|p| p.service == Service::Ec2).count(), 1);
        assert_eq!(c.instance(Service::Ec2, "us-east-1", "m5.xlarge", "Linux").unwrap().on_demand_hourly, Decimal::new(2, 1));
        assert_eq!(c.instances.iter().filter(|p| p.service == Service::Rds).count(), before_rds);
        assert_eq!(c.source("AmazonEC2").unwrap().origin, "test.csv");
        assert_eq!(c.source("AmazonRDS").unwrap().origin, "bundled snapshot");
    }

    #[test]
    fn a_snapshot_without_a_date_is_rejected() {
        let e = PriceCatalogue::from_snapshot_csv("offer,region,instance_type,variant,term,payment,upfront,hourly\n", "x.csv").unwrap_err();
        assert!(e.to_string().contains("published"), "{e}");
    }
}
