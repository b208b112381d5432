//! Building real DNS wire messages with hickory-proto: responses for tests, examples, benches
//! and the simulator's DNS servers, so that observation always runs on genuine wire data.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A name is not a valid DNS name.
    #[error("{name:?} is not a valid DNS name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// hickory-proto's reason.
        reason: String,
    },
    /// hickory-proto could not encode the message.
    #[error("could not encode the DNS message: {0}")]
    Encode(String),
}

fn parse_name(name: &str) -> Result<Name, WireError> {
    let mut parsed = Name::from_ascii(name).map_err(|e| WireError::InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A DNS response under construction.
///
/// ```
/// use fqdnpath_cache::wire::ResponseBuilder;
/// use hickory_proto::rr::RecordType;
///
/// let wire = ResponseBuilder::new(7, "www.github.com", RecordType::A)
///     .cname("www.github.com", "github.com", 300)
///     .address("github.com", "140.82.112.3".parse().unwrap(), 60)
///     .edns(1232)
///     .to_wire()
///     .unwrap();
/// let obs = fqdnpath_cache::observe(&wire).unwrap();
/// assert_eq!(obs.qname.as_str(), "www.github.com.");
/// assert_eq!(obs.ttl, 60);
/// ```
#[derive(Debug)]
pub struct ResponseBuilder {
    id: u16,
    question: Option<(String, RecordType)>,
    rcode: ResponseCode,
    answers: Vec<(String, u32, Answer)>,
    edns: Option<u16>,
    query: bool,
}

#[derive(Debug)]
enum Answer {
    Address(IpAddr),
    Cname(String),
    Other(RData),
}

impl ResponseBuilder {
    /// A NOERROR response with ID `id` to the question (`qname`, `qtype`).
    pub fn new(id: u16, qname: &str, qtype: RecordType) -> Self {
        Self {
            id,
            question: Some((qname.to_owned(), qtype)),
            rcode: ResponseCode::NoError,
            answers: Vec::new(),
            edns: None,
            query: false,
        }
    }

    /// Sets the response code.
    #[must_use]
    pub fn rcode(mut self, rcode: ResponseCode) -> Self {
        self.rcode = rcode;
        self
    }

    /// Adds an A or AAAA answer record.
    #[must_use]
    pub fn address(mut self, owner: &str, ip: IpAddr, ttl: u32) -> Self {
        self.answers
            .push((owner.to_owned(), ttl, Answer::Address(ip)));
        self
    }

    /// Adds a CNAME answer record.
    #[must_use]
    pub fn cname(mut self, owner: &str, target: &str, ttl: u32) -> Self {
        self.answers
            .push((owner.to_owned(), ttl, Answer::Cname(target.to_owned())));
        self
    }

    /// Adds an answer record of any other type.
    #[must_use]
    pub fn record(mut self, owner: &str, ttl: u32, data: RData) -> Self {
        self.answers
            .push((owner.to_owned(), ttl, Answer::Other(data)));
        self
    }

    /// Adds an EDNS OPT record advertising `max_payload` bytes.
    #[must_use]
    pub fn edns(mut self, max_payload: u16) -> Self {
        self.edns = Some(max_payload);
        self
    }

    /// Drops the question (a malformed response, for tests).
    #[must_use]
    pub fn without_question(mut self) -> Self {
        self.question = None;
        self
    }

    /// Marks the message as a query instead of a response (for tests).
    #[must_use]
    pub fn as_query(mut self) -> Self {
        self.query = true;
        self
    }

    /// The message, for callers that work with hickory-proto directly.
    pub fn to_message(&self) -> Result<Message, WireError> {
        let mut message = if self.query {
            let mut m = Message::query();
            m.metadata.id = self.id;
            m
        } else {
            Message::response(self.id, OpCode::Query)
        };
        message.metadata.response_code = self.rcode;
        message.metadata.recursion_desired = true;
        message.metadata.recursion_available = true;
        if let Some((qname, qtype)) = &self.question {
            message.add_query(Query::query(parse_name(qname)?, *qtype));
        }
        for (owner, ttl, answer) in &self.answers {
            let data = match answer {
                Answer::Address(IpAddr::V4(ip)) => RData::A(A(*ip)),
                Answer::Address(IpAddr::V6(ip)) => RData::AAAA(AAAA(*ip)),
                Answer::Cname(target) => RData::CNAME(CNAME(parse_name(target)?)),
                Answer::Other(data) => data.clone(),
            };
            message.add_answer(Record::from_rdata(parse_name(owner)?, *ttl, data));
        }
        if let Some(max_payload) = self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(max_payload);
            message.set_edns(edns);
        }
        Ok(message)
    }

    /// The message in wire format.
    pub fn to_wire(&self) -> Result<Vec<u8>, WireError> {
        self.to_message()?
            .to_vec()
            .map_err(|e| WireError::Encode(e.to_string()))
    }
}
