//! vCPUs and memory of EC2 instance types, for splitting a node's cost into
//! its CPU and memory parts. Covers the general-purpose (m), compute (c),
//! memory (r) and burstable (t) families of current generations; anything
//! else can be added under `[allocation.instance_types]`.

use std::collections::BTreeMap;

use tally_domain::InstanceCapacity;

/// vCPUs of a size, for the sizes that scale linearly.
fn size_vcpus(size: &str) -> Option<f64> {
    Some(match size {
        "medium" => 1.0,
        "large" => 2.0,
        "xlarge" => 4.0,
        "metal" => return None,
        s => {
            let n: f64 = s.strip_suffix("xlarge")?.parse().ok()?;
            n * 4.0
        }
    })
}

/// GiB of memory per vCPU in a family.
fn memory_per_vcpu(family: &str) -> Option<f64> {
    let class = family.chars().next()?;
    let generation_ok = family[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
    if !generation_ok {
        return None;
    }
    match class {
        'm' => Some(4.0),
        'c' => Some(2.0),
        'r' => Some(8.0),
        'x' => Some(16.0),
        'z' => Some(8.0),
        _ => None,
    }
}

/// The capacity of `instance_type`, from `overrides` first, then the bundled rules.
pub fn capacity(instance_type: &str, overrides: &BTreeMap<String, InstanceCapacity>) -> Option<InstanceCapacity> {
    if let Some(c) = overrides.get(instance_type) {
        return Some(*c);
    }
    let (family, size) = instance_type.split_once('.')?;
    if family.starts_with('t') {
        // Burstable types do not scale linearly.
        let (vcpu, memory_gb) = match size {
            "nano" => (2.0, 0.5),
            "micro" => (2.0, 1.0),
            "small" => (2.0, 2.0),
            "medium" => (2.0, 4.0),
            "large" => (2.0, 8.0),
            "xlarge" => (4.0, 16.0),
            "2xlarge" => (8.0, 32.0),
            _ => return None,
        };
        return Some(InstanceCapacity { vcpu, memory_gb });
    }
    let vcpu = size_vcpus(size)?;
    let per = memory_per_vcpu(family)?;
    Some(InstanceCapacity { vcpu, memory_gb: vcpu * per })
}

/// The instance type named by an EC2 usage type such as `BoxUsage:m5.xlarge`
/// or `USE2-SpotUsage:c5.large`.
pub fn instance_type_of_usage_type(usage_type: &str) -> Option<&str> {
    let (_, t) = usage_type.rsplit_once(':')?;
    let (family, size) = t.split_once('.')?;
    let mut chars = family.chars();
    let looks_like_family = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && family.chars().any(|c| c.is_ascii_digit())
        && family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (looks_like_family && !size.is_empty()).then_some(t)
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "the expected values are computed exactly")]
mod tests {
    use super::*;

    #[test]
    fn an_m5_xlarge_has_4_vcpus_and_16_gib() {
        let c = capacity("m5.xlarge", &BTreeMap::new()).unwrap();
        assert_eq!((c.vcpu, c.memory_gb), (4.0, 16.0));
    }

    #[test]
    fn family_and_size_give_the_capacity_of_common_types() {
        let get = |t| capacity(t, &BTreeMap::new()).map(|c| (c.vcpu, c.memory_gb));
        assert_eq!(get("c6i.2xlarge"), Some((8.0, 16.0)));
        assert_eq!(get("r7g.large"), Some((2.0, 16.0)));
        assert_eq!(get("m6g.12xlarge"), Some((48.0, 192.0)));
        assert_eq!(get("t3.medium"), Some((2.0, 4.0)));
        assert_eq!(get("p4d.24xlarge"), None);
        assert_eq!(get("m5.metal"), None);
    }

    #[test]
    fn a_configured_capacity_wins_over_the_bundled_rules() {
        let overrides = BTreeMap::from([("m5.xlarge".to_string(), InstanceCapacity { vcpu: 3.9, memory_gb: 15.0 })]);
        assert_eq!(capacity("m5.xlarge", &overrides).unwrap().vcpu, 3.9);
    }

    #[test]
    fn usage_types_name_their_instance_type() {
        assert_eq!(instance_type_of_usage_type("BoxUsage:m5.xlarge"), Some("m5.xlarge"));
        assert_eq!(instance_type_of_usage_type("USE2-SpotUsage:c5.large"), Some("c5.large"));
        assert_eq!(instance_type_of_usage_type("EBS:VolumeUsage.gp3"), None);
    }
}
