use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A tenant's identifier: a lowercase slug of 1 to 63 characters (`a-z`,
/// `0-9`, `-`), starting and ending with a letter or digit, like a DNS label.
///
/// The same rule makes the id safe in a URL path, a file name, a PostgreSQL
/// schema name pattern and a Redis key prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let expected = "a lowercase slug of 1-63 characters (a-z, 0-9, '-'), starting and ending with a letter or digit";
        let err = || ValidationError::new("tenant id", value, expected);
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(err());
        }
        let ok_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        if !bytes.iter().all(ok_char) || bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err(err());
        }
        Ok(Self(value.to_owned()))
    }

    /// Turns a free-form label (a tag value, a Kubernetes namespace) into a
    /// tenant id when it can be done without guessing: trims, lowercases and
    /// maps `_` and spaces to `-`. Anything else must already be valid.
    pub fn normalise(label: &str) -> Result<Self, ValidationError> {
        let candidate: String = label
            .trim()
            .chars()
            .map(|c| match c {
                '_' | ' ' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Self::parse(&candidate).map_err(|mut e| {
            e.value = label.to_owned();
            e
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A customer of the SaaS whose cost Tally attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    pub plan: Option<String>,
}

impl Tenant {
    pub const MAX_NAME_LEN: usize = 200;

    pub fn new(id: TenantId, display_name: &str, plan: Option<&str>) -> Result<Self, ValidationError> {
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(ValidationError::new("tenant display name", display_name, "1-200 printable characters"));
        }
        let plan = match plan.map(str::trim) {
            None | Some("") => None,
            Some(p) if p.chars().count() <= 64 && !p.chars().any(char::is_control) => Some(p.to_owned()),
            Some(p) => return Err(ValidationError::new("tenant plan", p, "at most 64 printable characters")),
        };
        Ok(Self { id, display_name: name.to_owned(), plan })
    }

    /// A tenant first seen in billing or usage data: named after its id, no plan.
    pub fn discovered(id: TenantId) -> Self {
        let display_name = id.as_str().to_owned();
        Self { id, display_name, plan: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_slug_is_a_valid_tenant_id() {
        assert_eq!(TenantId::parse("acme-corp-2").unwrap().as_str(), "acme-corp-2");
    }

    #[test]
    fn an_empty_tenant_id_is_rejected() {
        assert!(TenantId::parse("").is_err());
    }

    #[test]
    fn a_tenant_id_of_63_characters_is_accepted_and_64_is_rejected() {
        assert!(TenantId::parse(&"a".repeat(63)).is_ok());
        assert!(TenantId::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn uppercase_letters_underscores_and_dots_are_rejected() {
        for bad in ["Acme", "acme_corp", "acme.corp", "acme corp", "ümlaut"] {
            assert!(TenantId::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_tenant_id_cannot_start_or_end_with_a_hyphen() {
        assert!(TenantId::parse("-acme").is_err());
        assert!(TenantId::parse("acme-").is_err());
    }

    #[test]
    fn reserved_allocation_targets_are_not_tenant_ids() {
        assert!(TenantId::parse("__idle__").is_err());
        assert!(TenantId::parse("__shared__").is_err());
    }

    #[test]
    fn normalising_a_tag_value_lowercases_and_maps_underscores() {
        assert_eq!(TenantId::normalise(" Acme_Corp ").unwrap().as_str(), "acme-corp");
        let err = TenantId::normalise("acme/corp").unwrap_err();
        assert_eq!(err.value, "acme/corp");
    }

    #[test]
    fn a_tenant_id_deserialises_only_when_valid() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"ACME\"").is_err());
    }

    #[test]
    fn a_blank_display_name_is_rejected_and_a_blank_plan_is_none() {
        let id = TenantId::parse("acme").unwrap();
        assert!(Tenant::new(id.clone(), "   ", None).is_err());
        assert_eq!(Tenant::new(id, "Acme", Some(" ")).unwrap().plan, None);
    }
}
