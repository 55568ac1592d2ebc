//! Custom domains: which host names an app may be reached at besides `<app>.<domain>`, and how
//! a wildcard becomes a Traefik rule.
//!
//! A domain is a lowercase RFC 1123 host name (labels of 1 to 63 letters, digits and inner
//! dashes; at least two labels; 253 characters at most), or a wildcard `*.example.com` whose
//! `*` is the whole first label and stands for exactly one label. Ports, paths, schemes, IP
//! addresses and trailing dots are refused, so a domain can go into a Traefik rule verbatim.

/// Why a domain was refused; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid domain {domain:?}: {reason}; use a lowercase host name like www.example.com or a wildcard like *.example.com"
)]
pub struct DomainError {
    pub domain: String,
    pub reason: &'static str,
}

/// The longest host name DNS allows, in characters.
pub const MAX_DOMAIN_CHARS: usize = 253;
const MAX_LABEL_CHARS: usize = 63;

pub fn validate_domain(domain: &str) -> Result<(), DomainError> {
    let refuse = |reason| {
        Err(DomainError {
            domain: domain.to_owned(),
            reason,
        })
    };
    if domain.is_empty() {
        return refuse("it is empty");
    }
    if domain.len() > MAX_DOMAIN_CHARS {
        return refuse("it is longer than 253 characters");
    }
    if domain.contains("://") || domain.contains('/') {
        return refuse("give the host name only, without scheme or path");
    }
    if domain.contains(':') {
        return refuse("give the host name only, without a port");
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return refuse("use lowercase letters");
    }
    let host = domain.strip_prefix("*.").unwrap_or(domain);
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return refuse("it needs at least two labels, like example.com");
    }
    for label in &labels {
        if *label == "*" || label.contains('*') {
            return refuse("a wildcard must be the whole first label, as in *.example.com");
        }
        if label.is_empty() {
            return refuse(
                "it has an empty label (two dots in a row, or a leading or trailing dot)",
            );
        }
        if label.len() > MAX_LABEL_CHARS {
            return refuse("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return refuse("use letters, digits, dashes and dots only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return refuse("a label cannot start or end with a dash");
        }
    }
    if labels
        .iter()
        .all(|label| label.bytes().all(|b| b.is_ascii_digit()))
    {
        return refuse("IP addresses are not domains");
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return refuse("the last label cannot be all digits");
    }
    Ok(())
}

pub fn is_wildcard(domain: &str) -> bool {
    domain.starts_with("*.")
}

/// The Traefik v3 rule matching `domain` (which must be valid): ``Host(`www.example.com`)``,
/// or for `*.example.com` a `HostRegexp` matching exactly one label in front of it.
pub fn traefik_rule(domain: &str) -> String {
    match domain.strip_prefix("*.") {
        Some(parent) => format!(
            "HostRegexp(`^[a-z0-9-]+\\.{}$`)",
            parent.replace('.', "\\.")
        ),
        None => format!("Host(`{domain}`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_names_and_leading_wildcards() {
        for good in [
            "www.example.com",
            "example.test",
            "a.b.c.d.example.co",
            "xn--bcher-kva.example",
            "1a.example.com",
            "*.example.com",
            "*.apps.example.test",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert_eq!(validate_domain(good), Ok(()), "{good}");
        }
        let long = format!("{}.example.com", vec!["a".repeat(59); 4].join("."));
        assert!(long.len() <= 253, "{}", long.len());
        assert_eq!(validate_domain(&long), Ok(()));
    }

    #[test]
    fn refuses_what_is_not_a_lowercase_host_name() {
        for (bad, why) in [
            ("", "empty"),
            ("localhost", "two labels"),
            ("Example.com", "lowercase"),
            ("www.example.com:8080", "port"),
            ("http://www.example.com", "scheme"),
            ("www.example.com/path", "path"),
            ("127.0.0.1", "IP"),
            ("10.0.0.300", "IP"),
            ("[::1]", "port"),
            ("www..example.com", "empty label"),
            ("www.example.com.", "empty label"),
            (".example.com", "empty label"),
            ("-www.example.com", "dash"),
            ("www-.example.com", "dash"),
            ("www.exa_mple.com", "letters, digits"),
            ("www.exa mple.com", "letters, digits"),
            ("a.com`) || host(`b.com", "letters, digits"),
            ("www.*.example.com", "whole first label"),
            ("w*.example.com", "whole first label"),
            ("*.*.example.com", "whole first label"),
            ("*.com.", "empty label"),
            ("*", "two labels"),
            ("*.com", "two labels"),
            ("example.123", "all digits"),
        ] {
            let err = validate_domain(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        assert!(validate_domain(&format!("{}.com", "a".repeat(64))).is_err());
        let too_long = format!("{}.example.com", vec!["a".repeat(62); 4].join("."));
        assert!(too_long.len() > 253);
        assert!(
            validate_domain(&too_long)
                .unwrap_err()
                .to_string()
                .contains("253")
        );
    }

    #[test]
    fn wildcards_become_one_label_regexps() {
        assert_eq!(traefik_rule("www.example.com"), "Host(`www.example.com`)");
        assert_eq!(
            traefik_rule("*.example.com"),
            "HostRegexp(`^[a-z0-9-]+\\.example\\.com$`)"
        );
        assert!(is_wildcard("*.example.com"));
        assert!(!is_wildcard("www.example.com"));
    }
}
