//! Which addresses a delivery may reach. A webhook URL is a tenant's: left alone, gitd would
//! post wherever it points, including its own loopback services, the host's private network
//! and a cloud's metadata endpoint (169.254.169.254). So by default the host is resolved when
//! delivering (a name that resolved to a public address when the webhook was added may not any
//! more: DNS rebinding) and every address it resolves to must be public; the connection is then
//! made to the address checked, not to a second lookup. `[webhooks] allow_private_addresses`
//! lifts the rule, for local development and the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether an address is one a tenant's webhook may not reach: loopback, private, link-local,
/// carrier-grade NAT, unspecified, broadcast, multicast or reserved, also when an IPv6 address
/// carries an IPv4 one.
pub fn is_forbidden(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(address: Ipv4Addr) -> bool {
    let [first, second, ..] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || first == 0
        // 100.64.0.0/10, carrier-grade NAT.
        || (first == 100 && (64..128).contains(&second))
        // 240.0.0.0/4, reserved.
        || first >= 240
}

fn forbidden_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        // fc00::/7, unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10, link-local.
        || (first & 0xffc0) == 0xfe80
        // ::ffff:0:0/96 is handled by the caller; 64:ff9b::/96 translates to IPv4.
        || first == 0x0064
}

/// Why a delivery was not attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("refused to deliver to {host} ({address}): a loopback, private or link-local address")]
    Forbidden { host: String, address: IpAddr },
}

/// The addresses to connect to for `host:port`, each allowed, or why there are none.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, AddressError> {
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![SocketAddr::new(address, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| AddressError::Resolve {
                host: host.to_owned(),
                reason: err.to_string(),
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(AddressError::NoAddress {
            host: host.to_owned(),
        });
    }
    check(host, &addresses, allow_private)?;
    Ok(addresses)
}

/// Refuses the lot when any address is forbidden: a name that resolves to a public and a
/// private address is one an attacker can steer.
pub fn check(
    host: &str,
    addresses: &[SocketAddr],
    allow_private: bool,
) -> Result<(), AddressError> {
    if allow_private {
        return Ok(());
    }
    match addresses.iter().find(|address| is_forbidden(address.ip())) {
        Some(address) => Err(AddressError::Forbidden {
            host: host.to_owned(),
            address: address.ip(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for address in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(is_forbidden(ip(address)), "{address}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden(ip(address)), "{address}");
        }
    }

    #[tokio::test]
    async fn a_private_address_is_refused_unless_allowed() {
        let refused = resolve("127.0.0.1", 80, false).await;
        assert!(
            matches!(refused, Err(AddressError::Forbidden { .. })),
            "{refused:?}"
        );
        assert!(resolve("127.0.0.1", 80, true).await.is_ok());
        // A name is checked on what it resolves to, now.
        let localhost = resolve("localhost", 80, false).await;
        assert!(
            matches!(localhost, Err(AddressError::Forbidden { .. })),
            "{localhost:?}"
        );
    }

    #[test]
    fn one_forbidden_address_among_public_ones_refuses_the_host() {
        let mixed: Vec<SocketAddr> = vec![
            "8.8.8.8:443".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
        ];
        assert!(check("rebind.example", &mixed, false).is_err());
        assert!(check("rebind.example", &mixed, true).is_ok());
    }
}
