//! Custom domains: which host names an app may be reached at besides `<app>.<domain>`, and how
//! a wildcard becomes a Traefik rule.
//!
//! A domain is a lowercase RFC 1123 host name (labels of 1 to 63 letters, digits and inner
//! dashes; at least two labels; 253 characters at most), or a wildcard `*.example.com` whose
//! `*` is the whole first label and stands for exactly one label. Ports, paths, schemes, IP
//! addresses and trailing dots are refused, so a domain can go into a Traefik rule verbatim.
//!
//! [`DomainName`] is a domain that passed that rule ([`validate_domain`]): requests, responses
//! and gitd's store carry it, so serde refuses a bad domain at the edge and code that holds
//! one never checks it again.
//!
//! Two more rules keep one app off another's traffic and off the platform's:
//! [`check_platform_hosts`] refuses names equal to, under or beside the platform's own hosts
//! (the apps domain, the API's host names), and [`overlaps`] tells when two domains can match
//! the same host name (equal, or a wildcard covering an exact name), which gitd refuses across
//! apps in both directions: a wildcard never covers another app's name, and an exact name is
//! never taken from under another app's wildcard.

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

crate::names::string_newtype!(
    /// A custom domain that passed [`validate_domain`]: `www.example.com` or `*.example.com`.
    DomainName,
    DomainError,
    validate_domain
);

impl DomainName {
    pub fn is_wildcard(&self) -> bool {
        is_wildcard(self)
    }
}

/// The rule of [`DomainName`]; the agent checks its configured apps domain with it too.
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

/// Why a domain is reserved for the platform; the message names the platform host it clashes
/// with (the operator's own, never a tenant's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{domain} is reserved: {relation} {host}, the platform's own domain")]
pub struct ReservedDomain {
    pub domain: String,
    pub host: String,
    pub relation: &'static str,
}

/// Refuses a `domain` whose name, without a leading `*.`, is a platform host `H`, is
/// under `H`, is the parent `P` of `H`, or sits directly under `P` beside `H` (a sibling can
/// set cookies for `P` that `H` receives, and `*.P` would match `H` itself). The sibling and
/// parent rules apply only when `P` has two labels or more: under a top-level domain, siblings
/// are other people's domains.
pub fn check_platform_hosts(
    domain: &DomainName,
    platform_hosts: &[&str],
) -> Result<(), ReservedDomain> {
    let name = domain.strip_prefix("*.").unwrap_or(domain);
    for host in platform_hosts {
        let host = host.trim_end_matches('.');
        let relation = if name == host {
            Some(if is_wildcard(domain) {
                "it covers the names under"
            } else {
                "it is"
            })
        } else if is_under(name, host) {
            Some("it is under")
        } else {
            match parent(host).filter(|p| p.contains('.')) {
                Some(host_parent) if name == host_parent => Some(if is_wildcard(domain) {
                    "it covers"
                } else {
                    "it is the parent domain of"
                }),
                Some(host_parent) if parent(name) == Some(host_parent) => Some("it is beside"),
                _ => None,
            }
        };
        if let Some(relation) = relation {
            return Err(ReservedDomain {
                domain: domain.to_string(),
                host: host.to_owned(),
                relation,
            });
        }
    }
    Ok(())
}

/// Whether two domains can match one same host name: they are equal, or one is a wildcard
/// `*.X` and the other a name directly under `X` (a wildcard stands for one label).
pub fn overlaps(a: &DomainName, b: &DomainName) -> bool {
    if a == b {
        return true;
    }
    let covers = |wildcard: &str, name: &str| {
        wildcard
            .strip_prefix("*.")
            .is_some_and(|base| !is_wildcard(name) && parent(name) == Some(base))
    };
    covers(a.as_str(), b.as_str()) || covers(b.as_str(), a.as_str())
}

fn is_under(name: &str, host: &str) -> bool {
    name.len() > host.len()
        && name.ends_with(host)
        && name[..name.len() - host.len()].ends_with('.')
}

/// `example.com` for `www.example.com`; None for a single label.
fn parent(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, rest)| rest)
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

    fn domain(name: &str) -> DomainName {
        name.parse().unwrap()
    }

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
    fn platform_hosts_and_their_neighbours_are_reserved() {
        let hosts = ["apps.example.com", "paas.example.com", "paas.localhost"];
        for (reserved, relation) in [
            ("apps.example.com", "it is"),
            ("paas.example.com", "it is"),
            ("web.apps.example.com", "under"),
            ("*.apps.example.com", "covers the names under"),
            ("a.b.apps.example.com", "under"),
            ("*.paas.localhost", "covers the names under"),
            ("x.paas.localhost", "under"),
            ("api.example.com", "beside"),
            ("*.www.example.com", "beside"),
            ("*.example.com", "it covers"),
            ("example.com", "parent"),
        ] {
            let err = check_platform_hosts(&domain(reserved), &hosts).unwrap_err();
            assert!(err.to_string().contains(relation), "{reserved}: {err}");
            assert!(
                err.to_string().contains("the platform's own domain"),
                "{err}"
            );
        }
        for free in [
            "www.example.org",
            "*.shop.example.org",
            "a.www.example.com",
            "other.localhost",
            "xapps.example.com.org",
            "notapps.example.com.test",
        ] {
            assert_eq!(
                check_platform_hosts(&domain(free), &hosts),
                Ok(()),
                "{free}"
            );
        }
        // A platform host right under a top-level domain leaves its siblings to others.
        assert_eq!(
            check_platform_hosts(&domain("other.com"), &["example.com"]),
            Ok(())
        );
        assert!(check_platform_hosts(&domain("*.example.com"), &["example.com"]).is_err());
        assert_eq!(
            check_platform_hosts(&domain("www.example.com"), &[]),
            Ok(()),
            "no hosts, no reservations"
        );
    }

    #[test]
    fn overlaps_are_equal_names_or_a_wildcard_over_a_name() {
        assert!(overlaps(
            &domain("www.example.com"),
            &domain("www.example.com")
        ));
        assert!(overlaps(&domain("*.example.com"), &domain("*.example.com")));
        assert!(overlaps(
            &domain("*.example.com"),
            &domain("www.example.com")
        ));
        assert!(overlaps(
            &domain("www.example.com"),
            &domain("*.example.com")
        ));
        assert!(!overlaps(&domain("*.example.com"), &domain("example.com")));
        assert!(
            !overlaps(&domain("*.example.com"), &domain("a.www.example.com")),
            "one label only"
        );
        assert!(!overlaps(
            &domain("*.example.com"),
            &domain("*.www.example.com")
        ));
        assert!(!overlaps(
            &domain("www.example.com"),
            &domain("www.example.org")
        ));
    }

    #[test]
    fn domain_names_validate_when_parsed_and_read() {
        assert_eq!(domain("www.example.com"), "www.example.com");
        assert!(domain("*.example.com").is_wildcard());
        assert!(!domain("www.example.com").is_wildcard());
        let err = "Example.com".parse::<DomainName>().unwrap_err();
        assert!(err.to_string().contains("use lowercase letters"), "{err}");
        assert_eq!(
            serde_json::to_string(&domain("www.example.com")).unwrap(),
            r#""www.example.com""#
        );
        let err = serde_json::from_str::<DomainName>(r#""a.com`) || host(`b.com""#).unwrap_err();
        assert!(err.to_string().contains("invalid domain"), "{err}");
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
