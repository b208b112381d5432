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
//! Two readers give the same result: [`hickory`] ([`observe_hickory`]), hickory-proto's decoder
//! and the reduction above, the reference; and [`fast`] ([`observe_fast`]), which reads common
//! responses straight from the wire without allocating and declines the rest. This module
//! holds what they share (the [`Observation`], its error) and the dispatcher: [`observe`] and
//! [`observe_into`] try the fast path first and fall back to hickory-proto, so results and
//! errors are hickory-proto's for every input. [`text`] writes wire names as text, alike for
//! both readers.

use std::cell::RefCell;
use std::net::IpAddr;

use fqdnpath_names::Fqdn;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::DecodeError;

pub mod fast;
pub mod hickory;
pub mod text;

pub use fast::{FastPath, ObservationBuf, observe_fast};
pub use hickory::{observe_hickory, observe_message};
pub use text::name_text;

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

/// The mnemonic of a response code (`NOERROR`, `NXDOMAIN`, ...), or `RCODE<n>` for one
/// without a name ([`fqdnpath_names::rcode_name`]).
pub fn rcode_name(rcode: ResponseCode) -> String {
    fqdnpath_names::rcode_name(u16::from(rcode))
}

thread_local! {
    /// The fast path's buffers for [`observe`], kept warm per thread.
    static FAST_BUF: RefCell<ObservationBuf> = RefCell::new(ObservationBuf::new());
}

/// Parses a DNS response and reduces it to an [`Observation`].
///
/// Never panics; every rejected input gets an [`ObserveError`] that says why. Common responses
/// take the fast path ([`fast`]); the result is always the one of
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
