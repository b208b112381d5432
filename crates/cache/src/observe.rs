//! From DNS wire bytes to an [`Observation`]: what the DNS proxy learns from one response.
//!
//! Follows Cilium's `dnsproxy.ExtractMsgDetails`: the message must be a response with a
//! question; the name is the first question's, lower-cased and fully qualified; every A and AAAA
//! record of the answer section is attributed to the question name, whatever its owner name
//! (Cilium checks no CNAME chain); an IPv4-mapped AAAA address counts as the IPv4 address (Go's
//! `netipx.FromStdIP` unmaps it); the TTL is the minimum over the A, AAAA and CNAME records,
//! `u32::MAX` without any. CNAME targets are recorded for display and are not cached under their
//! own names. The authority and additional sections are ignored.
//!
//! Two readers give the same result: [`observe_hickory`], hickory-proto's decoder and the
//! reduction above, the reference; and [`crate::fastpath`], which reads common responses
//! straight from the wire without allocating and declines the rest. [`observe`] and
//! [`observe_into`] try the fast path first and fall back to hickory-proto, so results and
//! errors are hickory-proto's for every input.

use std::cell::RefCell;
use std::net::IpAddr;

use fqdnpath_names::Fqdn;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::DecodeError;

use crate::fastpath::{FastPath, ObservationBuf, observe_fast};

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

thread_local! {
    /// The fast path's buffers for [`observe`], kept warm per thread.
    static FAST_BUF: RefCell<ObservationBuf> = RefCell::new(ObservationBuf::new());
}

/// Parses a DNS response and reduces it to an [`Observation`].
///
/// Never panics; every rejected input gets an [`ObserveError`] that says why. Common responses
/// take the fast path ([`crate::fastpath`]); the result is always the one of
/// [`observe_hickory`].
pub fn observe(wire: &[u8]) -> Result<Observation, ObserveError> {
    let fast = FAST_BUF
        .try_with(|buf| {
            let mut buf = buf.try_borrow_mut().ok()?;
            match observe_fast(wire, &mut buf) {
                FastPath::Observed => Some(buf.to_observation()),
                FastPath::Declined => None,
            }
        })
        .ok()
        .flatten();
    match fast {
        Some(observation) => Ok(observation),
        None => observe_hickory(wire),
    }
}

/// [`observe`] into reusable buffers: allocates nothing once `buf` is warm, for responses the
/// fast path handles (the others are decoded by hickory-proto and copied in).
///
/// On an error `buf` is left empty.
pub fn observe_into(wire: &[u8], buf: &mut ObservationBuf) -> Result<(), ObserveError> {
    if observe_fast(wire, buf) == FastPath::Observed {
        return Ok(());
    }
    match observe_hickory(wire) {
        Ok(observation) => {
            buf.set_from(&observation);
            Ok(())
        }
        Err(error) => {
            buf.clear();
            Err(error)
        }
    }
}

/// [`observe`] by hickory-proto alone: decode the whole message, then reduce it. The reference
/// the fast path is checked against.
pub fn observe_hickory(wire: &[u8]) -> Result<Observation, ObserveError> {
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
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name {
        push_label_text(&mut out, label);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    ascii_string(out)
}

/// How [`name_text`] writes a byte.
const AS_IS: u8 = 0;
const BACKSLASH: u8 = 1;
const DECIMAL: u8 = 2;

/// Each byte's class (`AS_IS`, `BACKSLASH` or `DECIMAL`), indexed by the byte.
static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [DECIMAL; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        classes[b] = AS_IS;
        b += 1;
    }
    let escaped = b".' @;()\"\\";
    let mut i = 0;
    while i < escaped.len() {
        classes[escaped[i] as usize] = BACKSLASH;
        i += 1;
    }
    classes
}

/// Appends one label of [`name_text`] and its dot to `out`, as ASCII bytes (shared with the
/// fast path, so the two readers write names alike).
pub(crate) fn push_label_text(out: &mut Vec<u8>, label: &[u8]) {
    // The usual label needs no escape: one copy.
    if label.iter().all(|&b| BYTE_CLASS[usize::from(b)] == AS_IS) {
        out.extend_from_slice(label);
    } else {
        for &b in label {
            match BYTE_CLASS[usize::from(b)] {
                AS_IS => out.push(b),
                BACKSLASH => out.extend_from_slice(&[b'\\', b]),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'0' + b / 100,
                    b'0' + b / 10 % 10,
                    b'0' + b % 10,
                ]),
            }
        }
    }
    out.push(b'.');
}

/// Bytes written by [`push_label_text`] (always ASCII) as a `String`, reusing their buffer.
pub(crate) fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}
