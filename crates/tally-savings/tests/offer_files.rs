//! The AWS Price List offer formats, read from small excerpts (fixtures/prices).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use tally_savings::{Payment, PriceCatalogue, Service, Term, offer};

fn fixture(name: &str) -> std::path::PathBuf {
    tally_test_support::workspace_root().join("fixtures/prices").join(name)
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn an_ec2_json_offer_keeps_linux_shared_instance_hours_and_standard_reservations() {
    let c = offer::read(&fixture("AmazonEC2-excerpt.json")).unwrap();
    assert_eq!(c.sources.len(), 1);
    assert_eq!(c.sources[0].offer, "AmazonEC2");
    assert_eq!(c.sources[0].published, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    assert_eq!(c.sources[0].origin, "AmazonEC2-excerpt.json");
    // Windows, capacity reservations and storage are left out; Ohio comes from its location name.
    let types: Vec<_> = c.instances.iter().map(|p| (p.region.as_str(), p.instance_type.as_str(), p.variant.as_str())).collect();
    assert_eq!(types, vec![("us-east-1", "m5.xlarge", "Linux"), ("us-east-2", "m5.large", "Linux")]);
    let m5 = c.instance(Service::Ec2, "us-east-1", "m5.xlarge", "Linux").unwrap();
    assert_eq!(m5.on_demand_hourly, d("0.192"));
    // Convertible offerings are not standard: four standard options remain.
    assert_eq!(m5.reserved.len(), 4);
    let partial = m5.reserved(Term::OneYear, Payment::PartialUpfront).unwrap();
    assert_eq!((partial.upfront, partial.hourly), (d("516"), d("0.059")));
    let all3 = m5.reserved(Term::ThreeYears, Payment::AllUpfront).unwrap();
    assert_eq!((all3.upfront, all3.hourly), (d("2000"), d("0")));
    assert_eq!(m5.reserved(Term::OneYear, Payment::NoUpfront).unwrap().hourly, d("0.121"));
}

#[test]
fn an_rds_csv_offer_prices_each_engine_and_deployment() {
    let c = offer::read(&fixture("AmazonRDS-excerpt.csv")).unwrap();
    assert_eq!(c.sources[0].published, NaiveDate::from_ymd_opt(2026, 10, 15).unwrap());
    let variants: Vec<_> = c.instances.iter().map(|p| p.variant.as_str()).collect();
    // "Multi-AZ (readable standbys)" clusters are another product; storage is not an instance.
    assert_eq!(variants, vec!["PostgreSQL Multi-AZ", "PostgreSQL Single-AZ"]);
    let maz = c.instance(Service::Rds, "us-east-1", "db.r6g.xlarge", "PostgreSQL Multi-AZ").unwrap();
    assert_eq!(maz.on_demand_hourly, d("0.898"));
    let partial = maz.reserved(Term::OneYear, Payment::PartialUpfront).unwrap();
    assert_eq!((partial.upfront, partial.hourly), (d("2452"), d("0.28")));
    assert_eq!(maz.reserved(Term::OneYear, Payment::NoUpfront).unwrap().hourly, d("0.584"));
}

#[test]
fn an_elasticache_json_offer_prices_nodes_by_engine() {
    let c = offer::read(&fixture("AmazonElastiCache-excerpt.json")).unwrap();
    let node = c.instance(Service::ElastiCache, "us-east-1", "cache.r6g.large", "Redis").unwrap();
    assert_eq!(node.on_demand_hourly, d("0.206"));
    // Offering class is absent in ElastiCache terms: still a standard reservation.
    let r = node.reserved(Term::ThreeYears, Payment::PartialUpfront).unwrap();
    assert_eq!((r.upfront, r.hourly), (d("1260"), d("0.048")));
}

#[test]
fn a_savings_plans_offer_keeps_compute_plans_for_linux_instance_hours() {
    let c = offer::read(&fixture("ComputeSavingsPlans-excerpt.json")).unwrap();
    assert_eq!(c.sources[0].offer, "ComputeSavingsPlans");
    // The EC2 Instance Savings Plan, Windows and Fargate rates are left out.
    assert_eq!(c.savings_plans.len(), 2, "{:?}", c.savings_plans);
    assert_eq!(c.savings_plan_rate("us-east-1", "m5.xlarge", Term::OneYear, Payment::NoUpfront).unwrap().hourly, d("0.137"));
    assert_eq!(c.savings_plan_rate("us-east-1", "m5.xlarge", Term::ThreeYears, Payment::AllUpfront).unwrap().hourly, d("0.087"));
}

#[test]
fn importing_an_offer_replaces_that_offers_prices_and_keeps_the_rest() {
    let mut c = PriceCatalogue::bundled();
    c.merge(offer::read(&fixture("AmazonRDS-excerpt.csv")).unwrap());
    assert_eq!(c.source("AmazonRDS").unwrap().published, NaiveDate::from_ymd_opt(2026, 10, 15).unwrap());
    assert_eq!(c.instances.iter().filter(|p| p.service == Service::Rds).count(), 2);
    assert!(c.instance(Service::Ec2, "us-east-1", "m5.2xlarge", "Linux").is_some(), "the bundled EC2 prices stay");
}

#[test]
fn files_that_are_not_offers_are_refused_with_the_reason() {
    let e = offer::parse("hello,world\n1,2\n", "notes.csv").unwrap_err();
    assert!(e.to_string().contains("notes.csv") && e.to_string().contains("neither an AWS Price List offer file"), "{e}");
    let e = offer::parse(r#"{"offerCode":"AmazonS3","publicationDate":"2026-11-01T00:00:00Z","products":{},"terms":{}}"#, "s3.json").unwrap_err();
    assert!(e.to_string().contains("no prices Tally can use"), "{e}");
    let e = offer::parse("\"FormatVersion\",\"v1.0\"\n\"OfferCode\",\"AmazonRDS\"\n\"SKU\",\"TermType\"\n", "bad.csv").unwrap_err();
    assert!(e.to_string().contains("Publication Date"), "{e}");
    let e = offer::read(std::path::Path::new("/nonexistent/offer.json")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/offer.json"), "{e}");
}
