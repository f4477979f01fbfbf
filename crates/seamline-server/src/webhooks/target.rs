//! Where deliveries may go. Link-local addresses (cloud metadata services
//! such as 169.254.169.254 live there), unspecified, multicast and
//! broadcast addresses are refused: the delivery log shows the start of a
//! receiver's answer, so a webhook aimed there would read them out.
//! Loopback and private networks stay allowed: a small business runs its
//! CRM next to Seamline.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why `ip` may not receive webhooks, if it may not.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("a broadcast address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("a link-local address"),
        // AWS's IPv6 metadata service.
        IpAddr::V6(v6) if v6.segments()[..4] == [0xfd00, 0x0ec2, 0, 0] => {
            Some("a metadata service address")
        }
        ip if ip.is_unspecified() => Some("an unspecified address"),
        ip if ip.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// Resolves names like the system does, then drops refused addresses; a
/// name with nothing else left does not resolve.
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| refused(a.ip()).is_none())
                .collect();
            match (allowed.is_empty(), found.first()) {
                (true, Some(first)) => {
                    let why = refused(first.ip()).unwrap_or("a refused address");
                    Err(format!("{host} resolves to {why}, where webhooks are not sent").into())
                }
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_are_refused_private_networks_are_not() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::",
        ] {
            let ip: IpAddr = bad.parse().expect("an address");
            assert!(refused(ip).is_some(), "{bad}");
        }
        for good in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.20",
            "93.184.216.34",
            "::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = good.parse().expect("an address");
            assert_eq!(refused(ip), None, "{good}");
        }
    }
}
