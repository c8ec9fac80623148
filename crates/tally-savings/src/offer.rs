//! AWS Price List bulk offer files: the JSON and CSV formats of the
//! `AmazonEC2`, `AmazonRDS` and `AmazonElastiCache` offers, and the JSON
//! format of the Compute Savings Plans offer.
//!
//! Only what a reservation projection needs is kept: on-demand and standard
//! reserved prices of instance-hours (EC2 Linux on shared tenancy, RDS per
//! engine and deployment, ElastiCache per engine) and Compute Savings Plan
//! rates for EC2 Linux instance-hours. Prices in other currencies are skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::catalogue::{CatalogueError, InstancePrice, Payment, PriceCatalogue, PriceSource, ReservedPrice, SavingsPlanRate, Service, Term};
use crate::family::{region_of_location, region_of_usage_type};

/// Reads an offer file, choosing the format from its content: Tally's own
/// snapshot CSV, an offer CSV, an offer JSON or a Savings Plans offer JSON.
pub fn read(path: &Path) -> Result<PriceCatalogue, CatalogueError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Io { file: file.clone(), source })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(file);
    parse(&text, &name)
}

/// [`read`] on text already in memory; `name` is used in messages and as the origin.
pub fn parse(text: &str, name: &str) -> Result<PriceCatalogue, CatalogueError> {
    let head = text.trim_start_matches('\u{feff}').trim_start();
    let catalogue = if head.starts_with('#') {
        PriceCatalogue::from_snapshot_csv(head, name)?
    } else if head.starts_with('{') {
        let probe: Probe = serde_json::from_str(head).map_err(|e| parse_err(name, format!("not an AWS offer file: {e}")))?;
        if probe.terms.as_ref().is_some_and(|t| t.get("savingsPlan").is_some()) { savings_plans_json(head, name)? } else { offer_json(head, name)? }
    } else if head.starts_with("\"FormatVersion\"") || head.starts_with("FormatVersion") {
        offer_csv(head, name)?
    } else {
        return Err(parse_err(name, "neither an AWS Price List offer file (JSON or CSV) nor a Tally price snapshot".into()));
    };
    if catalogue.instances.is_empty() && catalogue.savings_plans.is_empty() {
        return Err(CatalogueError::Empty {
            file: name.to_owned(),
            message: "no EC2 Linux, RDS or ElastiCache instance-hour prices, nor Compute Savings Plan rates for EC2 Linux, in USD".into(),
        });
    }
    Ok(catalogue)
}

fn parse_err(file: &str, message: String) -> CatalogueError {
    CatalogueError::Parse { file: file.to_owned(), message }
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    terms: Option<HashMap<String, serde::de::IgnoredAny>>,
}

/// The attributes that decide whether a product is an instance-hour Tally prices.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    servicecode: Option<String>,
    location: Option<String>,
    region_code: Option<String>,
    instance_type: Option<String>,
    tenancy: Option<String>,
    operating_system: Option<String>,
    pre_installed_sw: Option<String>,
    capacitystatus: Option<String>,
    usagetype: Option<String>,
    database_engine: Option<String>,
    deployment_option: Option<String>,
    license_model: Option<String>,
    cache_engine: Option<String>,
}

/// What one product is, once recognised.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    service: Service,
    region: String,
    instance_type: String,
    variant: String,
}

fn recognise(offer: &str, family: &str, a: &Attributes) -> Option<Key> {
    let service = Service::from_code(a.servicecode.as_deref().unwrap_or(offer))?;
    let instance_type = a.instance_type.clone().filter(|t| !t.is_empty())?;
    let region = match a.region_code.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => r.to_owned(),
        None => region_of_location(a.location.as_deref()?)?.to_owned(),
    };
    let variant = match service {
        Service::Ec2 => {
            let linux = family == "Compute Instance"
                && a.operating_system.as_deref() == Some("Linux")
                && a.tenancy.as_deref() == Some("Shared")
                && a.pre_installed_sw.as_deref().is_none_or(|s| s == "NA")
                && a.capacitystatus.as_deref().is_none_or(|s| s == "Used")
                && a.usagetype.as_deref().is_none_or(|u| u.contains("BoxUsage"));
            if !linux {
                return None;
            }
            "Linux".to_owned()
        }
        Service::Rds => {
            if family != "Database Instance" || a.license_model.as_deref().is_some_and(|l| l.to_ascii_lowercase().contains("bring your own")) {
                return None;
            }
            let deployment = match a.deployment_option.as_deref()? {
                d @ ("Single-AZ" | "Multi-AZ") => d,
                _ => return None,
            };
            format!("{} {deployment}", a.database_engine.as_deref()?)
        }
        Service::ElastiCache => {
            if family != "Cache Instance" {
                return None;
            }
            a.cache_engine.clone()?
        }
    };
    Some(Key { service, region, instance_type, variant })
}

#[derive(Default)]
struct Prices {
    on_demand: Option<Decimal>,
    reserved: BTreeMap<(Term, Payment), (Decimal, Decimal)>,
}

impl Prices {
    fn add_reserved(&mut self, term: Term, payment: Payment, unit: &str, price: Decimal) {
        let e = self.reserved.entry((term, payment)).or_insert((Decimal::ZERO, Decimal::ZERO));
        if unit.eq_ignore_ascii_case("Quantity") {
            e.0 += price;
        } else {
            e.1 += price;
        }
    }
}

fn build(offer: &str, name: &str, published: NaiveDate, prices: BTreeMap<Key, Prices>) -> PriceCatalogue {
    let instances: Vec<InstancePrice> = prices
        .into_iter()
        .filter_map(|(k, p)| {
            let on_demand_hourly = p.on_demand.filter(|d| !d.is_zero())?;
            Some(InstancePrice {
                service: k.service,
                region: k.region,
                instance_type: k.instance_type,
                variant: k.variant,
                on_demand_hourly,
                reserved: p.reserved.into_iter().map(|((term, payment), (upfront, hourly))| ReservedPrice { term, payment, upfront, hourly }).collect(),
                published,
            })
        })
        .collect();
    PriceCatalogue {
        sources: vec![PriceSource { offer: offer.to_owned(), published, origin: name.to_owned(), note: None }],
        instances,
        savings_plans: Vec::new(),
    }
}

fn date_of(s: &str, name: &str) -> Result<NaiveDate, CatalogueError> {
    let d = s.trim();
    NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").map_err(|e| parse_err(name, format!("publication date {s:?}: {e}")))
}

fn lease(s: &str) -> Option<Term> {
    Term::parse(s)
}

// ---- JSON offer files ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OfferJson {
    offer_code: String,
    publication_date: String,
    products: HashMap<String, ProductJson>,
    #[serde(default)]
    terms: HashMap<String, HashMap<String, HashMap<String, TermJson>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductJson {
    #[serde(default)]
    product_family: String,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TermJson {
    #[serde(default)]
    price_dimensions: HashMap<String, DimensionJson>,
    #[serde(default)]
    term_attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DimensionJson {
    unit: String,
    price_per_unit: HashMap<String, String>,
}

fn usd(prices: &HashMap<String, String>) -> Option<Decimal> {
    prices.get("USD").and_then(|p| p.trim().parse().ok())
}

fn offer_json(text: &str, name: &str) -> Result<PriceCatalogue, CatalogueError> {
    let offer: OfferJson = serde_json::from_str(text).map_err(|e| parse_err(name, format!("not an AWS offer file: {e}")))?;
    let published = date_of(&offer.publication_date, name)?;
    let keys: HashMap<&str, Key> =
        offer.products.iter().filter_map(|(sku, p)| recognise(&offer.offer_code, &p.product_family, &p.attributes).map(|k| (sku.as_str(), k))).collect();
    let mut prices: BTreeMap<Key, Prices> = BTreeMap::new();
    for (kind, by_sku) in &offer.terms {
        for (sku, terms) in by_sku {
            let Some(key) = keys.get(sku.as_str()) else { continue };
            for term in terms.values() {
                match kind.as_str() {
                    "OnDemand" => {
                        if let Some(p) = term.price_dimensions.values().find(|d| d.unit.starts_with("Hr")).and_then(|d| usd(&d.price_per_unit)) {
                            prices.entry(key.clone()).or_default().on_demand = Some(p);
                        }
                    }
                    "Reserved" => {
                        let attr = |k: &str| term.term_attributes.get(k).map(String::as_str);
                        if attr("OfferingClass").is_some_and(|c| !c.eq_ignore_ascii_case("standard")) {
                            continue;
                        }
                        let (Some(t), Some(p)) = (attr("LeaseContractLength").and_then(lease), attr("PurchaseOption").and_then(Payment::parse)) else {
                            continue;
                        };
                        for d in term.price_dimensions.values() {
                            if let Some(price) = usd(&d.price_per_unit) {
                                prices.entry(key.clone()).or_default().add_reserved(t, p, &d.unit, price);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(build(&offer.offer_code, name, published, prices))
}

// ---- CSV offer files ----

fn offer_csv(text: &str, name: &str) -> Result<PriceCatalogue, CatalogueError> {
    let mut meta = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut published = None;
    let mut offer_code = None;
    let mut header_line = 0usize;
    for (i, rec) in meta.records().enumerate() {
        let rec = rec.map_err(|e| parse_err(name, format!("line {}: {e}", i + 1)))?;
        match rec.get(0) {
            Some("Publication Date") => published = rec.get(1).map(str::to_owned),
            Some("OfferCode") => offer_code = rec.get(1).map(str::to_owned),
            Some("SKU") => {
                header_line = i;
                break;
            }
            _ => {}
        }
        if i > 20 {
            return Err(parse_err(name, "no `SKU,...` header row in the first lines".into()));
        }
    }
    let published = date_of(published.as_deref().ok_or_else(|| parse_err(name, "no `Publication Date` line".into()))?, name)?;
    let offer_code = offer_code.ok_or_else(|| parse_err(name, "no `OfferCode` line".into()))?;
    let body: String = text.lines().skip(header_line).map(|l| format!("{l}\n")).collect();
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(body.as_bytes());
    let headers = rdr.headers().map_err(|e| parse_err(name, format!("header row: {e}")))?.clone();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let need = |n: &str| col(n).ok_or_else(|| parse_err(name, format!("no {n:?} column")));
    let (c_type, c_unit, c_price, c_cur, c_family) = (need("TermType")?, need("Unit")?, need("PricePerUnit")?, need("Currency")?, need("Product Family")?);
    let (c_lease, c_option, c_class) = (col("LeaseContractLength"), col("PurchaseOption"), col("OfferingClass"));
    let opt = |c: Option<usize>, r: &csv::StringRecord| c.and_then(|i| r.get(i)).filter(|s| !s.is_empty()).map(str::to_owned);
    let (c_svc, c_loc, c_region, c_itype, c_ten, c_os, c_sw, c_cap, c_usage, c_engine, c_dep, c_lic, c_cache) = (
        col("serviceCode"),
        col("Location"),
        col("Region Code"),
        col("Instance Type"),
        col("Tenancy"),
        col("Operating System"),
        col("Pre Installed S/W"),
        col("CapacityStatus"),
        col("usageType"),
        col("Database Engine"),
        col("Deployment Option"),
        col("License Model"),
        col("Cache Engine"),
    );
    let mut prices: BTreeMap<Key, Prices> = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let r = rec.map_err(|e| parse_err(name, format!("line {}: {e}", header_line + i + 2)))?;
        if r.get(c_cur) != Some("USD") {
            continue;
        }
        let a = Attributes {
            servicecode: opt(c_svc, &r),
            location: opt(c_loc, &r),
            region_code: opt(c_region, &r),
            instance_type: opt(c_itype, &r),
            tenancy: opt(c_ten, &r),
            operating_system: opt(c_os, &r),
            pre_installed_sw: opt(c_sw, &r),
            capacitystatus: opt(c_cap, &r),
            usagetype: opt(c_usage, &r),
            database_engine: opt(c_engine, &r),
            deployment_option: opt(c_dep, &r),
            license_model: opt(c_lic, &r),
            cache_engine: opt(c_cache, &r),
        };
        let Some(key) = recognise(&offer_code, r.get(c_family).unwrap_or(""), &a) else { continue };
        let Ok(price) = r.get(c_price).unwrap_or("").trim().parse::<Decimal>() else {
            return Err(parse_err(name, format!("line {}: PricePerUnit {:?} is not a number", header_line + i + 2, r.get(c_price).unwrap_or(""))));
        };
        let unit = r.get(c_unit).unwrap_or("");
        match r.get(c_type) {
            Some("OnDemand") if unit.starts_with("Hr") => prices.entry(key).or_default().on_demand = Some(price),
            Some("Reserved") => {
                if opt(c_class, &r).is_some_and(|c| !c.eq_ignore_ascii_case("standard")) {
                    continue;
                }
                let (Some(t), Some(p)) = (opt(c_lease, &r).as_deref().and_then(lease), opt(c_option, &r).as_deref().and_then(Payment::parse)) else { continue };
                prices.entry(key).or_default().add_reserved(t, p, unit, price);
            }
            _ => {}
        }
    }
    Ok(build(&offer_code, name, published, prices))
}

// ---- Savings Plans offer files ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpOffer {
    publication_date: String,
    #[serde(default)]
    region_code: Option<String>,
    products: Vec<SpProduct>,
    terms: SpTerms,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpProduct {
    sku: String,
    product_family: String,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpTerms {
    savings_plan: Vec<SpTerm>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpTerm {
    sku: String,
    #[serde(default)]
    lease_contract_length: Option<SpLease>,
    #[serde(default)]
    rates: Vec<SpRate>,
}

#[derive(Deserialize)]
struct SpLease {
    duration: u32,
    unit: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpRate {
    discounted_usage_type: String,
    #[serde(default)]
    discounted_operation: String,
    #[serde(default)]
    discounted_service_code: String,
    #[serde(default)]
    discounted_region_code: Option<String>,
    #[serde(default)]
    discounted_instance_type: Option<String>,
    discounted_rate: SpPrice,
}

#[derive(Deserialize)]
struct SpPrice {
    price: String,
    currency: String,
}

fn savings_plans_json(text: &str, name: &str) -> Result<PriceCatalogue, CatalogueError> {
    let offer: SpOffer = serde_json::from_str(text).map_err(|e| parse_err(name, format!("not a Savings Plans offer file: {e}")))?;
    let published = date_of(&offer.publication_date, name)?;
    let plans: HashMap<&str, (Term, Payment)> = offer
        .products
        .iter()
        .filter(|p| p.product_family == "ComputeSavingsPlans")
        .filter_map(|p| {
            let term = p.attributes.get("purchaseTerm").and_then(|t| Term::parse(t))?;
            let payment = p.attributes.get("purchaseOption").and_then(|o| Payment::parse(o))?;
            Some((p.sku.as_str(), (term, payment)))
        })
        .collect();
    let mut rates: BTreeMap<(String, String, Term, Payment), Decimal> = BTreeMap::new();
    for term in &offer.terms.savings_plan {
        let Some(&(t, p)) = plans.get(term.sku.as_str()) else { continue };
        if let Some(l) = &term.lease_contract_length {
            let years = if l.unit.starts_with("year") { l.duration } else { l.duration / 12 };
            if Term::parse(&years.to_string()) != Some(t) {
                return Err(parse_err(name, format!("plan {}: purchase term {t} but lease of {} {}", term.sku, l.duration, l.unit)));
            }
        }
        for r in &term.rates {
            let linux = r.discounted_service_code == "AmazonEC2" && r.discounted_operation == "RunInstances" && r.discounted_usage_type.contains("BoxUsage:");
            if !linux || r.discounted_rate.currency != "USD" {
                continue;
            }
            let Some(itype) = r.discounted_instance_type.clone().or_else(|| r.discounted_usage_type.split_once(':').map(|(_, t)| t.to_owned())) else {
                continue;
            };
            let Some(region) = r
                .discounted_region_code
                .clone()
                .or_else(|| offer.region_code.clone())
                .or_else(|| region_of_usage_type(&r.discounted_usage_type).map(str::to_owned))
            else {
                continue;
            };
            let price: Decimal = r
                .discounted_rate
                .price
                .trim()
                .parse()
                .map_err(|_| parse_err(name, format!("plan {}: rate {:?} is not a number", term.sku, r.discounted_rate.price)))?;
            rates.insert((region, itype, t, p), price);
        }
    }
    Ok(PriceCatalogue {
        sources: vec![PriceSource { offer: "ComputeSavingsPlans".into(), published, origin: name.to_owned(), note: None }],
        instances: Vec::new(),
        savings_plans: rates
            .into_iter()
            .map(|((region, instance_type, term, payment), hourly)| SavingsPlanRate { region, instance_type, term, payment, hourly, published })
            .collect(),
    })
}
