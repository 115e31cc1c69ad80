//! `trusted_proxies`: the reverse proxies whose word on a request's client address is taken.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Addresses and networks of the reverse proxies in front of cport, parsed once at start. A
/// plain address is a network of that address alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies(Vec<IpNet>);

/// The most `X-Forwarded-For` hops read, from the right: far more than any chain of proxies.
const MOST_HOPS: usize = 16;

impl Proxies {
    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The address a request came from: `peer`, the connection's own address, unless `peer`
    /// is a trusted proxy; then the nearest address in `forwarded_for` (the `X-Forwarded-For`
    /// values, in order) that is not one, read from the right. Only the proxies' own entries
    /// are believed: what a client wrote at the left of the list is passed over, since the
    /// first untrusted hop from the right is where the request entered. An entry that is no
    /// address ends the walk at the last address believed.
    ///
    /// The values are bytes: a proxy appends the address it saw to whatever the client sent,
    /// in the same value, so a byte a client wrote that is no text (`é`) spoils only its own
    /// entry, never the proxy's on the right.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a [u8]>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&[u8]> = forwarded_for.into_iter().flat_map(|v| v.split(|b| *b == b',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev().take(MOST_HOPS) {
            let Some(ip) = std::str::from_utf8(hop).ok().and_then(|h| hop_address(h.trim())) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps bracketed or with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let bare = hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(hop);
    bare.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// One entry of the list as the file writes it: `10.0.0.0/8` or `127.0.0.1`.
fn parse_entry(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    // A single address as the addresses checked against it are: an IPv4 one written as
    // IPv6 (`::ffff:10.0.0.1`) is the IPv4 one.
    s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical()))).map_err(|_| {
        format!("{} is not an address or a network (like 127.0.0.1 or 10.0.0.0/8)", crate::model::quoted(s))
    })
}

impl<'de> Deserialize<'de> for Proxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        entries.iter().map(|e| parse_entry(e)).collect::<Result<_, _>>().map(Proxies).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Proxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// A list of addresses and networks, for the configuration reference.
impl schemars::JsonSchema for Proxies {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Proxies".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "array", "items": {"type": "string"}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_and_only_from_the_right() {
        let p: Proxies = serde_json::from_str(r#"["127.0.0.1", "10.0.0.0/8", "::1"]"#).unwrap();
        // Straight from a client: its own address, whatever it says.
        let client = |peer: &str, values: &[&str]| p.client(ip(peer), values.iter().map(|v| v.as_bytes()));
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // Through the proxy: the address the proxy appended.
        assert_eq!(client("127.0.0.1", &["203.0.113.7"]), ip("203.0.113.7"));
        // A client that forged an entry on the left is still its own address.
        assert_eq!(client("127.0.0.1", &["1.2.3.4, 203.0.113.7"]), ip("203.0.113.7"));
        // Bytes that are no text on the left spoil only their own entry.
        let odd = p.client(ip("127.0.0.1"), [b"\xc3\xa9, 203.0.113.7".as_slice()]);
        assert_eq!(odd, ip("203.0.113.7"));
        // Through two proxies (both trusted), over two headers, with ports and brackets.
        assert_eq!(client("::1", &["203.0.113.7:4711", "10.1.2.3"]), ip("203.0.113.7"));
        assert_eq!(client("::ffff:127.0.0.1", &["[2001:db8::1]:80"]), ip("2001:db8::1"));
        assert_eq!(client("127.0.0.1", &["[2001:db8::2]"]), ip("2001:db8::2"));
        // No header, or nonsense in it: the nearest address known.
        assert_eq!(client("127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(client("127.0.0.1", &["unknown, 10.0.0.5"]), ip("10.0.0.5"));
        // No proxies trusted: the header is never read.
        let none = Proxies::default().client(ip("127.0.0.1"), [b"203.0.113.7".as_slice()]);
        assert_eq!(none, ip("127.0.0.1"));
        // An IPv4 proxy written as IPv6 is the IPv4 one.
        let mapped: Proxies = serde_json::from_str(r#"["::ffff:127.0.0.1"]"#).unwrap();
        assert!(mapped.trusts(ip("127.0.0.1")));
        let bad = serde_json::from_str::<Proxies>(r#"["10.0.0.0/99"]"#).unwrap_err().to_string();
        assert!(bad.contains("is not an address or a network"), "{bad}");
    }
}
