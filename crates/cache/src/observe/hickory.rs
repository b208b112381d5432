//! The reference reader: hickory-proto decodes the whole message, then the reduction of
//! [`super`] turns it into an [`Observation`].

use std::net::IpAddr;

use fqdnpath_names::Fqdn;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::RData;

use super::text::name_text;
use super::{MAX_MESSAGE_LEN, Observation, ObserveError};

/// [`observe`](super::observe()) by hickory-proto alone: decode the whole message, then reduce it. The reference
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

/// Reduces an already parsed response to an [`Observation`] (see [`observe`](super::observe())).
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
