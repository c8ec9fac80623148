//! Instance families, sizes and the normalisation factors AWS uses for
//! size-flexible reservations (EC2 Linux regional RIs, RDS RIs).

use rust_decimal::Decimal;
use serde::Serialize;

/// AWS's normalisation factor of an instance size: `large` is 4, each size
/// up doubles (`xlarge` 8, `2xlarge` 16). `None` for sizes without one
/// (`metal`), which are then reserved only as themselves.
pub fn normalization_factor(size: &str) -> Option<Decimal> {
    let f = match size {
        "nano" => Decimal::new(25, 2),
        "micro" => Decimal::new(5, 1),
        "small" => Decimal::ONE,
        "medium" => Decimal::TWO,
        "large" => Decimal::from(4),
        "xlarge" => Decimal::from(8),
        _ => {
            let n: u32 = size.strip_suffix("xlarge")?.parse().ok()?;
            Decimal::from(8 * n)
        }
    };
    Some(f)
}

/// An instance type split into family and size: `m5.xlarge` is family `m5`,
/// `db.r6g.xlarge` is `db.r6g`, `cache.r6g.large` is `cache.r6g`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Family {
    pub family: String,
    pub size: String,
}

impl Family {
    pub fn of(instance_type: &str) -> Option<Self> {
        let (family, size) = instance_type.rsplit_once('.')?;
        if family.is_empty() || size.is_empty() {
            return None;
        }
        Some(Self { family: family.to_owned(), size: size.to_owned() })
    }
}

/// The region code of a usage type's prefix (`USE2-BoxUsage:...` is
/// `us-east-2`); us-east-1 writes no prefix for most usage types.
pub fn region_of_usage_type(usage_type: &str) -> Option<&'static str> {
    let Some((prefix, _)) = usage_type.split_once('-') else {
        return Some("us-east-1");
    };
    let region = match prefix {
        "USE1" => "us-east-1",
        "USE2" => "us-east-2",
        "USW1" => "us-west-1",
        "USW2" => "us-west-2",
        "CAN1" => "ca-central-1",
        "EU" | "EUW1" => "eu-west-1",
        "EUW2" => "eu-west-2",
        "EUW3" => "eu-west-3",
        "EUC1" => "eu-central-1",
        "EUN1" => "eu-north-1",
        "EUS1" => "eu-south-1",
        "APN1" => "ap-northeast-1",
        "APN2" => "ap-northeast-2",
        "APN3" => "ap-northeast-3",
        "APS1" => "ap-southeast-1",
        "APS2" => "ap-southeast-2",
        "APS3" => "ap-south-1",
        "SAE1" => "sa-east-1",
        // Not a region prefix (e.g. `Multi-AZUsage:...`, `RDS:...`): us-east-1.
        _ if !prefix.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) || prefix.len() > 4 => "us-east-1",
        _ => return None,
    };
    Some(region)
}

/// The region code of a price list `location` name.
pub fn region_of_location(location: &str) -> Option<&'static str> {
    Some(match location {
        "US East (N. Virginia)" => "us-east-1",
        "US East (Ohio)" => "us-east-2",
        "US West (N. California)" => "us-west-1",
        "US West (Oregon)" => "us-west-2",
        "Canada (Central)" => "ca-central-1",
        "EU (Ireland)" | "Europe (Ireland)" => "eu-west-1",
        "EU (London)" | "Europe (London)" => "eu-west-2",
        "EU (Paris)" | "Europe (Paris)" => "eu-west-3",
        "EU (Frankfurt)" | "Europe (Frankfurt)" => "eu-central-1",
        "EU (Stockholm)" | "Europe (Stockholm)" => "eu-north-1",
        "EU (Milan)" | "Europe (Milan)" => "eu-south-1",
        "Asia Pacific (Tokyo)" => "ap-northeast-1",
        "Asia Pacific (Seoul)" => "ap-northeast-2",
        "Asia Pacific (Osaka)" => "ap-northeast-3",
        "Asia Pacific (Singapore)" => "ap-southeast-1",
        "Asia Pacific (Sydney)" => "ap-southeast-2",
        "Asia Pacific (Mumbai)" => "ap-south-1",
        "South America (Sao Paulo)" => "sa-east-1",
        _ => return None,
    })
}

/// The database engine of an RDS operation code (`CreateDBInstance:0014`).
pub fn rds_engine_of_operation(operation: &str) -> Option<&'static str> {
    Some(match operation.rsplit_once(':')?.1 {
        "0002" => "MySQL",
        "0014" => "PostgreSQL",
        "0016" => "Aurora MySQL",
        "0021" => "Aurora PostgreSQL",
        "0018" => "MariaDB",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_double_from_large_and_metal_has_no_factor() {
        assert_eq!(normalization_factor("large"), Some(Decimal::from(4)));
        assert_eq!(normalization_factor("xlarge"), Some(Decimal::from(8)));
        assert_eq!(normalization_factor("2xlarge"), Some(Decimal::from(16)));
        assert_eq!(normalization_factor("24xlarge"), Some(Decimal::from(192)));
        assert_eq!(normalization_factor("nano"), Some(Decimal::new(25, 2)));
        assert_eq!(normalization_factor("metal"), None);
    }

    #[test]
    fn families_keep_their_service_prefix() {
        assert_eq!(Family::of("db.r6g.xlarge").unwrap(), Family { family: "db.r6g".into(), size: "xlarge".into() });
        assert_eq!(Family::of("cache.r6g.large").unwrap().family, "cache.r6g");
        assert_eq!(Family::of("m5.xlarge").unwrap().size, "xlarge");
        assert_eq!(Family::of("m5"), None);
    }

    #[test]
    fn usage_type_prefixes_name_regions_and_no_prefix_is_us_east_1() {
        assert_eq!(region_of_usage_type("BoxUsage:m5.xlarge"), Some("us-east-1"));
        assert_eq!(region_of_usage_type("USE2-BoxUsage:m5.xlarge"), Some("us-east-2"));
        assert_eq!(region_of_usage_type("EU-BoxUsage:m5.xlarge"), Some("eu-west-1"));
        assert_eq!(region_of_usage_type("Multi-AZUsage:db.r6g.xl"), Some("us-east-1"));
        assert_eq!(region_of_usage_type("ZZZ9-BoxUsage:m5.xlarge"), None);
    }
}
