//! From DNS wire bytes to an [`Observation`]: what the DNS proxy learns from one response.
//!
//! Follows Cilium's `dnsproxy.ExtractMsgDetails`: the message must be a response with a
//! question; the name is the first question's, lower-cased and fully qualified; every A and AAAA
//! record of the answer section is attributed to the question name, whatever its owner name
//! (Cilium checks no CNAME chain); an IPv4-mapped AAAA address counts as the IPv4 address (Go's
//! `netipx.FromStdIP` unmaps it); the TTL is the minimum over the A, AAAA and CNAME records,
//! `u32::MAX` without any. CNAME targets are recorded for display and are not cached under their
//! own names. The authority and additional sections are ignored.

use std::net::IpAddr;

use fqdnpath_names::Fqdn;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::DecodeError;

/// The largest DNS message: a 16-bit length over TCP, the IP limit over UDP.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// Why wire bytes gave no observation. Nothing is learned from such a message.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// Longer than any DNS message can be.
    #[error("DNS message is {len} bytes long; at most {max} are allowed")]
    TooLarge {
        /// The length received.
        len: usize,
        /// [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// hickory-proto could not decode the message (truncated, bad label, bad record, ...).
    #[error("malformed DNS message ({len} bytes): {source}")]
    Malformed {
        /// The length received.
        len: usize,
        /// The decoder's reason.
        #[source]
        source: DecodeError,
    },
    /// The message is a query, not a response.
    #[error("DNS message {id} is a query, not a response")]
    NotAResponse {
        /// The message ID.
        id: u16,
    },
    /// The response has no question, so there is no name to learn for.
    #[error("DNS response {id} has no question")]
    NoQuestion {
        /// The message ID.
        id: u16,
    },
}

/// What one DNS response says, reduced to what the FQDN cache and the flow log need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The message ID.
    pub id: u16,
    /// The first question's name, lower-case and fully qualified.
    pub qname: Fqdn,
    /// The first question's type.
    pub qtype: RecordType,
    /// The response code (with EDNS extended bits).
    pub rcode: ResponseCode,
    /// Every A and AAAA address of the answer section, in order, attributed to `qname`.
    pub addresses: Vec<IpAddr>,
    /// The minimum TTL over the A, AAAA and CNAME records; `u32::MAX` when there is none.
    pub ttl: u32,
    /// The CNAME targets, in answer order, as written (recorded for display, never cached).
    pub cnames: Vec<String>,
    /// The types of the answer records, in order.
    pub answer_types: Vec<RecordType>,
}

impl Observation {
    /// The response code as DNS tools and Hubble write it: `NOERROR`, `NXDOMAIN`, ...
    pub fn rcode_name(&self) -> String {
        rcode_name(self.rcode)
    }

    /// Whether Cilium learns from this response: NOERROR with at least one A or AAAA record.
    pub fn is_learnable(&self) -> bool {
        self.rcode == ResponseCode::NoError && !self.addresses.is_empty()
    }
}

/// The mnemonic of a response code (`NOERROR`, `FORMERR`, `SERVFAIL`, `NXDOMAIN`, `NOTIMP`,
/// `REFUSED`, ...), or `RCODE<n>` for one without a name.
pub fn rcode_name(rcode: ResponseCode) -> String {
    let name = match u16::from(rcode) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        n => return format!("RCODE{n}"),
    };
    name.to_owned()
}

/// Parses a DNS response and reduces it to an [`Observation`].
///
/// Never panics; every rejected input gets an [`ObserveError`] that says why.
pub fn observe(wire: &[u8]) -> Result<Observation, ObserveError> {
    if wire.len() > MAX_MESSAGE_LEN {
        return Err(ObserveError::TooLarge {
            len: wire.len(),
            max: MAX_MESSAGE_LEN,
        });
    }
    let message = Message::from_vec(wire).map_err(|source| ObserveError::Malformed {
        len: wire.len(),
        source,
    })?;
    observe_message(&message)
}

/// Reduces an already parsed response to an [`Observation`] (see [`observe`]).
pub fn observe_message(message: &Message) -> Result<Observation, ObserveError> {
    let id = message.metadata.id;
    if message.metadata.message_type != MessageType::Response {
        return Err(ObserveError::NotAResponse { id });
    }
    let Some(question) = message.queries.first() else {
        return Err(ObserveError::NoQuestion { id });
    };
    let qname = Fqdn::from_string(name_text(&question.name));
    let mut addresses = Vec::new();
    let mut cnames = Vec::new();
    let mut answer_types = Vec::with_capacity(message.answers.len());
    let mut ttl = u32::MAX;
    for record in &message.answers {
        match &record.data {
            RData::A(a) => {
                addresses.push(IpAddr::V4(a.0));
                ttl = ttl.min(record.ttl);
            }
            RData::AAAA(aaaa) => {
                addresses.push(match aaaa.0.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(aaaa.0),
                });
                ttl = ttl.min(record.ttl);
            }
            RData::CNAME(target) => {
                cnames.push(name_text(&target.0));
                ttl = ttl.min(record.ttl);
            }
            _ => {}
        }
        answer_types.push(record.record_type());
    }
    Ok(Observation {
        id,
        qname,
        qtype: question.query_type,
        rcode: message.metadata.response_code,
        addresses,
        ttl,
        cnames,
        answer_types,
    })
}

/// A wire name as text the way Cilium's DNS library (miekg/dns) writes it, so that selectors
/// see the same characters: `.`, space, `'`, `@`, `;`, `(`, `)`, `"` and `\\` inside a label are
/// escaped with a backslash, bytes outside `!`..`~` as `\\DDD` (decimal), everything else as
/// it is; each label ends with a dot, and the root is `.`. (hickory's own `to_ascii` escapes a
/// leading `-` and writes octal, which a `*` would then fail to match.)
pub fn name_text(name: &Name) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(name.len() + 1);
    for label in name {
        for &b in label {
            match b {
                b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}
