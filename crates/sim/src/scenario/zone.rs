//! `zone[]` and the `update-zone` step: the authoritative server's records.

use serde::Deserialize;

/// A zone record, or `{name, remove: true}` in `update-zone`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRecord {
    /// Owner name.
    pub name: String,
    /// `A`, `AAAA` or `CNAME`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// TTL in seconds.
    pub ttl: Option<u32>,
    /// Address or target.
    pub value: Option<String>,
    /// Removes every record of the name.
    #[serde(default)]
    pub remove: bool,
}

impl ZoneRecord {
    /// Checks the type and its value; the error is the key (`type` or `value`) and the reason.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.remove {
            return Ok(());
        }
        let kind = self.kind.as_deref().unwrap_or("");
        let value = self.value.as_deref().unwrap_or("");
        let ok = match kind {
            "A" => value.parse::<std::net::Ipv4Addr>().is_ok(),
            "AAAA" => value.parse::<std::net::Ipv6Addr>().is_ok(),
            "CNAME" => !value.is_empty(),
            _ => return Err(("type", format!("{kind:?} is not A, AAAA or CNAME"))),
        };
        if ok {
            Ok(())
        } else {
            Err(("value", format!("{value:?} is not a valid {kind} value")))
        }
    }
}
