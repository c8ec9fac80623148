use std::fmt;

/// A value that does not satisfy the rules of the type it was meant to become.
///
/// `what` names the kind of value ("tenant id", "currency"), `value` is the
/// rejected input as given, and `expected` says what would have been accepted,
/// so that a message built from it tells a person how to fix the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

impl ValidationError {
    pub fn new(what: &'static str, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        Self { what, value: value.to_string(), expected: expected.into() }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: expected {}", self.what, self.value, self.expected)
    }
}
