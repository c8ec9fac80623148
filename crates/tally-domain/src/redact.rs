//! Secrets kept out of what is stored or shown: the one rule, called
//! wherever an error is recorded, logged or answered.
//!
//! Removed from any text: the password of every `scheme://user:password@`
//! address, every `password=` parameter, and Tally's own secrets (API
//! tokens `tly_...`, session ids `tss_...`, sign-in links `tsl_...`).

/// `text` with every secret it holds replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = redact_url_passwords(text);
    out = redact_parameters(&out);
    for prefix in ["tly_", "tss_", "tsl_"] {
        out = redact_prefixed(&out, prefix);
    }
    out
}

/// Ends a word of text: an address or a `key=value` runs to the next of these.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')
}

/// In every `scheme://user:password@host` address, everything between the
/// user's colon and the last `@` of the address (a password may hold `/`,
/// `;`, `)` or `@` unescaped; masking a little more than the password, in
/// an odd address, is the safe side).
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(ends_word).unwrap_or(tail.len());
        let address = &tail[..end];
        match (address.find(':'), address.rfind('@')) {
            (Some(colon), Some(at)) if colon < at => {
                out.push_str(&address[..colon]);
                out.push_str(":***");
                out.push_str(&address[at..]);
            }
            _ => out.push_str(address),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `password=...` parameters and variables (`PGPASSWORD=`, `sslpassword=`,
/// `pass=`, `pwd=`, `secret=`, `token=`), quoted values included.
fn redact_parameters(text: &str) -> String {
    const KEYS: [&str; 5] = ["password=", "pass=", "pwd=", "secret=", "token="];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let Some(k) = KEYS.iter().find(|k| lower[i..].starts_with(*k)) else {
            let c = text[i..].chars().next().expect("within the text");
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        out.push_str(&text[i..i + k.len()]);
        let start = i + k.len();
        let value = &text[start..];
        let end = match value.chars().next() {
            // A quoted value runs to its closing quote.
            Some(q @ ('\'' | '"')) => value[1..].find(q).map_or(text.len(), |e| start + e + 2),
            _ => value.find(|c: char| c == '&' || c == ';' || ends_word(c)).map_or(text.len(), |e| start + e),
        };
        if end > start {
            out.push_str("***");
        }
        i = end;
    }
    out
}

/// `<prefix><64 hex>` secrets.
fn redact_prefixed(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let body = &tail[prefix.len()..];
        let hex = body.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex >= 16 {
            out.push_str(prefix);
            out.push_str("***");
            rest = &body[hex..];
        } else {
            out.push_str(prefix);
            rest = body;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_in_addresses_are_replaced_wherever_they_stand() {
        assert_eq!(redact("postgres://tally:s3cret@db:5432/tally"), "postgres://tally:***@db:5432/tally");
        assert_eq!(redact("postgres://tally@db/tally"), "postgres://tally@db/tally");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(
            redact("Redis URL \"redis://:hunter2@cache:6379/0\": invalid, then rediss://u:p%40ss@h"),
            "Redis URL \"redis://:***@cache:6379/0\": invalid, then rediss://u:***@h"
        );
        assert_eq!(redact("connecting to postgres://a:b@c/d?sslmode=require&password=x1"), "connecting to postgres://a:***@c/d?sslmode=require&password=***");
        // Passwords with characters an address may hold unescaped.
        for (text, secret) in [
            ("postgres://tally:pa;ss@db/app", "pa;ss"),
            ("redis://:pa)ss@h", "pa)ss"),
            ("postgres://u:pa/ss@h/db", "pa/ss"),
            ("postgres://u:p@ss@h/db", "p@ss"),
            ("host=db password='s3cret word' user=x", "s3cret"),
            ("host=db password=\"quoted s3cret\"", "s3cret"),
            ("PGPASSWORD=hunter2 psql", "hunter2"),
            ("sslpassword=hunter3;", "hunter3"),
        ] {
            let r = redact(text);
            assert!(!r.contains(secret), "{text:?} -> {r:?}");
        }
        assert_eq!(redact("host=db password='s3cret word' user=x"), "host=db password=*** user=x");
    }

    #[test]
    fn tallys_own_secrets_are_replaced() {
        let token = format!("tly_{}", "ab".repeat(32));
        assert_eq!(redact(&format!("bad token {token}.")), "bad token tly_***.");
        assert_eq!(redact(&format!("tss_{} tsl_{}", "0".repeat(64), "f".repeat(64))), "tss_*** tsl_***");
        assert_eq!(redact("the tly_ prefix"), "the tly_ prefix");
        assert_eq!(redact("épée token=é&x"), "épée token=***&x");
    }
}
