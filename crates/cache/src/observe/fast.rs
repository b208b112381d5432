//! The zero-allocation observation path: common DNS responses read straight from the wire.
//!
//! [`observe_fast`] reads a response into an [`ObservationBuf`] whose buffers are kept from one
//! call to the next, so a warm buffer observes a response without allocating. It is a second
//! reader of the bytes hickory-proto decodes in [`super::observe_hickory`], and it
//! must give the same observation on every input it accepts. So it accepts only the common
//! shape, checks everything hickory-proto checks on it, and declines the rest
//! ([`FastPath::Declined`]): the caller then asks hickory-proto, which decides (and names the
//! error, if any). It never reports an error itself.
//!
//! The shape it handles:
//!
//! - header: a response (QR set), opcode QUERY, TC clear, one question, no authority record;
//! - the question: any type, class IN;
//! - answers: A, AAAA and CNAME records of class IN, with the exact RDATA lengths hickory-proto
//!   requires (4, 16, the CNAME target's length; never empty);
//! - additional records: the same kinds, and at most one OPT record owned by the root whose
//!   options are well formed and of kinds hickory-proto keeps as opaque bytes (not NSID,
//!   DAU or client subnet, whose contents it parses);
//! - names: hickory-proto's decoding rules, replayed exactly: labels of at most 63 bytes, at
//!   most 255 bytes encoded, and compression pointers that point before the start of the part
//!   of the name holding them (which also rules out loops), and no length byte or pointer of a
//!   pointed-to part at or beyond the start of the part that pointed to it.
//!
//! Bytes after the last record are ignored, as hickory-proto ignores them. Names are written
//! as text only where the observation needs them (the question, CNAME targets); an owner name
//! that is a lone pointer to a name already read is not read again (`read_owner` says why
//! that gives hickory-proto's verdict). The `observe_fast` fuzz target and
//! `tests/fast_path.rs` check the agreement with hickory-proto differentially.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fqdnpath_names::Fqdn;
use fqdnpath_names::name::is_fqdn;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::text::push_label_text;
use super::{MAX_MESSAGE_LEN, Observation};

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
/// EDNS option codes whose contents hickory-proto parses (and may reject): NSID, DAU, ECS.
const PARSED_EDNS_OPTIONS: [u16; 3] = [3, 5, 8];
/// hickory-proto's bound on a name's encoded length (`Name::MAX_LENGTH`).
const MAX_NAME_LEN: usize = 255;
const HEADER_LEN: usize = 12;

/// Whether [`observe_fast`] observed the response or left it to hickory-proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPath {
    /// The response had the common shape; the buffer holds its observation.
    Observed,
    /// Not handled here (unusual or malformed): ask hickory-proto. The buffer is left empty
    /// (and so not learnable).
    Declined,
}

/// An [`Observation`] in reusable buffers: what [`observe_fast`] and
/// [`crate::observe::observe_into`] fill.
///
/// Keep one per thread (or per ingest loop) and pass it to every call: after the first few
/// responses its buffers are large enough, and observing allocates nothing.
#[derive(Clone, Debug)]
pub struct ObservationBuf {
    id: u16,
    qname: String,
    qtype: RecordType,
    rcode: ResponseCode,
    addresses: Vec<IpAddr>,
    ttl: u32,
    /// The CNAME targets, one after the other; `cname_spans` says where each is.
    cname_text: String,
    cname_spans: Vec<(usize, usize)>,
    answer_types: Vec<RecordType>,
}

impl Default for ObservationBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl ObservationBuf {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            id: 0,
            qname: String::new(),
            qtype: RecordType::from(0),
            rcode: ResponseCode::NoError,
            addresses: Vec::new(),
            ttl: u32::MAX,
            cname_text: String::new(),
            cname_spans: Vec::new(),
            answer_types: Vec::new(),
        }
    }

    /// Empties the buffers, keeping their capacity.
    pub fn clear(&mut self) {
        self.id = 0;
        self.qname.clear();
        self.qtype = RecordType::from(0);
        self.rcode = ResponseCode::NoError;
        self.addresses.clear();
        self.ttl = u32::MAX;
        self.cname_text.clear();
        self.cname_spans.clear();
        self.answer_types.clear();
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The first question's name, lower-case and fully qualified (see [`Observation::qname`]);
    /// empty when the buffer is.
    pub fn qname(&self) -> &str {
        &self.qname
    }

    /// The first question's type.
    pub fn qtype(&self) -> RecordType {
        self.qtype
    }

    /// The response code (with EDNS extended bits).
    pub fn rcode(&self) -> ResponseCode {
        self.rcode
    }

    /// Every A and AAAA address of the answer section, in order (see
    /// [`Observation::addresses`]).
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The minimum TTL over the A, AAAA and CNAME records; `u32::MAX` when there is none.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The CNAME targets, in answer order, as written.
    pub fn cnames(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.cname_spans
            .iter()
            .map(|&(start, end)| self.cname_text.get(start..end).unwrap_or_default())
    }

    /// The types of the answer records, in order.
    pub fn answer_types(&self) -> &[RecordType] {
        &self.answer_types
    }

    /// Whether Cilium learns from this response: NOERROR with at least one A or AAAA record.
    pub fn is_learnable(&self) -> bool {
        self.rcode == ResponseCode::NoError && !self.addresses.is_empty()
    }

    /// The observation as an owned [`Observation`] (this allocates).
    pub fn to_observation(&self) -> Observation {
        Observation {
            id: self.id,
            qname: Fqdn::new(&self.qname),
            qtype: self.qtype,
            rcode: self.rcode,
            addresses: self.addresses.clone(),
            ttl: self.ttl,
            cnames: self.cnames().map(str::to_owned).collect(),
            answer_types: self.answer_types.clone(),
        }
    }

    /// Copies an owned observation into the buffers.
    pub fn set_from(&mut self, observation: &Observation) {
        self.clear();
        self.id = observation.id;
        self.qname.push_str(observation.qname.as_str());
        self.qtype = observation.qtype;
        self.rcode = observation.rcode;
        self.addresses.extend_from_slice(&observation.addresses);
        self.ttl = observation.ttl;
        for cname in &observation.cnames {
            let start = self.cname_text.len();
            self.cname_text.push_str(cname);
            self.cname_spans.push((start, self.cname_text.len()));
        }
        self.answer_types
            .extend_from_slice(&observation.answer_types);
    }
}

/// Observes a response of the common shape (see the [module docs](self)) into `buf`, or
/// declines. Never allocates once `buf` is warm; never panics; never errors.
///
/// Whenever it returns [`FastPath::Observed`], `buf` holds exactly what
/// [`super::observe_hickory`] returns for `wire`.
pub fn observe_fast(wire: &[u8], buf: &mut ObservationBuf) -> FastPath {
    buf.clear();
    // Names are written as bytes (ASCII by construction) into the buffers' own storage, and
    // checked as text once per buffer at the end.
    let mut text = Text {
        qname: std::mem::take(&mut buf.qname).into_bytes(),
        cnames: std::mem::take(&mut buf.cname_text).into_bytes(),
    };
    let read = scan(wire, buf, &mut text);
    let (qname, qname_ok) = into_text(text.qname);
    let (cnames, cnames_ok) = into_text(text.cnames);
    buf.qname = qname;
    buf.cname_text = cnames;
    if read.is_none() || !qname_ok || !cnames_ok {
        buf.clear();
        return FastPath::Declined;
    }
    // As `Fqdn::from_string`: a trailing dot unless the name already ends with one.
    if !is_fqdn(&buf.qname) {
        buf.qname.push('.');
    }
    FastPath::Observed
}

/// Written bytes back as a `String`, keeping the buffer; `false` (and an empty string) if
/// they were not text, which cannot happen as names are written in ASCII.
fn into_text(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, true),
        Err(error) => {
            let mut bytes = error.into_bytes();
            bytes.clear();
            (String::from_utf8(bytes).unwrap_or_default(), false)
        }
    }
}

/// The names' text while a message is read.
struct Text {
    qname: Vec<u8>,
    cnames: Vec<u8>,
}

/// The whole reading; `None` declines.
fn scan(msg: &[u8], buf: &mut ObservationBuf, text: &mut Text) -> Option<()> {
    if msg.len() > MAX_MESSAGE_LEN {
        return None;
    }
    let header = msg.get(..HEADER_LEN)?;
    // QR set, opcode 0 (QUERY), TC clear; AA and RD do not matter.
    if header[2] & 0b1111_1010 != 0b1000_0000 {
        return None;
    }
    let rcode_low = header[3] & 0x0F;
    let [questions, answers, authorities, additionals] =
        [4, 6, 8, 10].map(|at| u16::from_be_bytes([header[at], header[at + 1]]));
    if questions != 1 || authorities != 0 {
        return None;
    }
    buf.id = u16::from_be_bytes([header[0], header[1]]);

    let mut known = KnownNames::default();
    let qname = &mut text.qname;
    let mut at = read_name(msg, HEADER_LEN, |label| push_label_text(qname, label))?;
    known.add(HEADER_LEN, qname.is_empty());
    if qname.is_empty() {
        qname.push(b'.');
    }
    qname.make_ascii_lowercase();
    let qtype = be16(msg, at)?;
    if be16(msg, at + 2)? != CLASS_IN {
        return None;
    }
    buf.qtype = RecordType::from(qtype);
    at += 4;

    for _ in 0..answers {
        let record = read_record(msg, at, &mut known)?;
        if record.class != CLASS_IN {
            return None;
        }
        match read_rdata(msg, &record, &mut known, Some((buf, &mut text.cnames)))? {
            TYPE_A => buf.answer_types.push(RecordType::A),
            TYPE_AAAA => buf.answer_types.push(RecordType::AAAA),
            _ => buf.answer_types.push(RecordType::CNAME),
        }
        buf.ttl = buf.ttl.min(record.ttl);
        at = record.end;
    }

    let mut rcode_high = None;
    for _ in 0..additionals {
        let record = read_record(msg, at, &mut known)?;
        if record.rtype == TYPE_OPT {
            if !record.owner_is_root || rcode_high.is_some() || !edns_options_ok(msg, &record) {
                return None;
            }
            rcode_high = Some(record.ttl.to_be_bytes()[0]);
        } else {
            if record.class != CLASS_IN {
                return None;
            }
            read_rdata(msg, &record, &mut known, None)?;
        }
        at = record.end;
    }

    let low = ResponseCode::from_low(rcode_low);
    buf.rcode = match rcode_high {
        Some(high) => ResponseCode::from(high, low.low()),
        None => low,
    };
    Some(())
}

/// A resource record's fixed fields, after its owner name.
struct RecordHead {
    owner_is_root: bool,
    rtype: u16,
    class: u16,
    ttl: u32,
    /// Where the RDATA starts.
    rdata: usize,
    /// The RDATA length, within the message.
    rdlen: usize,
    /// Where the next record starts.
    end: usize,
}

fn read_record(msg: &[u8], at: usize, known: &mut KnownNames) -> Option<RecordHead> {
    let (at, owner_is_root) = read_owner(msg, at, known)?;
    let fixed = msg.get(at..at + 10)?;
    let rdata = at + 10;
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    if rdlen > msg.len() - rdata {
        return None;
    }
    Some(RecordHead {
        owner_is_root,
        rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        rdata,
        rdlen,
        end: rdata + rdlen,
    })
}

/// Reads the RDATA of an A, AAAA or CNAME record, into `out` (the observation and the CNAME
/// text) when given (an answer); returns the type. Declines any other type, and any length
/// hickory-proto would reject (an empty RDATA is an update prerequisite to hickory-proto, an
/// error outside UPDATE messages).
fn read_rdata(
    msg: &[u8],
    record: &RecordHead,
    known: &mut KnownNames,
    out: Option<(&mut ObservationBuf, &mut Vec<u8>)>,
) -> Option<u16> {
    let rdata = msg.get(record.rdata..record.end)?;
    match record.rtype {
        TYPE_A => {
            let octets: [u8; 4] = rdata.try_into().ok()?;
            if let Some((out, _)) = out {
                out.addresses.push(IpAddr::V4(Ipv4Addr::from(octets)));
            }
        }
        TYPE_AAAA => {
            let octets: [u8; 16] = rdata.try_into().ok()?;
            if let Some((out, _)) = out {
                let v6 = Ipv6Addr::from(octets);
                out.addresses.push(match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(v6),
                });
            }
        }
        TYPE_CNAME if record.rdlen > 0 => {
            let end = if let Some((out, text)) = out {
                let start = text.len();
                let end = read_name(msg, record.rdata, |label| push_label_text(text, label))?;
                known.add(record.rdata, text.len() == start);
                if text.len() == start {
                    text.push(b'.');
                }
                out.cname_spans.push((start, text.len()));
                end
            } else {
                let mut labels = 0usize;
                let end = read_name(msg, record.rdata, |_| labels += 1)?;
                known.add(record.rdata, labels == 0);
                end
            };
            if end != record.end {
                return None;
            }
        }
        _ => return None,
    }
    Some(record.rtype)
}

/// Whether an OPT record's options are laid out exactly (code, length, data) to the end of
/// its RDATA, and hickory-proto keeps each as opaque bytes.
fn edns_options_ok(msg: &[u8], record: &RecordHead) -> bool {
    let Some(mut rest) = msg.get(record.rdata..record.end) else {
        return false;
    };
    while !rest.is_empty() {
        let Some((&[c0, c1, l0, l1], tail)) = rest.split_first_chunk::<4>() else {
            return false;
        };
        let code = u16::from_be_bytes([c0, c1]);
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if PARSED_EDNS_OPTIONS.contains(&code) || len > tail.len() {
            return false;
        }
        rest = &tail[len..];
    }
    true
}

/// The names read in full so far in this message, by where they start, each with whether it
/// is the root: at most a few, kept on the stack.
#[derive(Default)]
struct KnownNames {
    names: [(usize, bool); 8],
    len: usize,
}

impl KnownNames {
    fn add(&mut self, start: usize, is_root: bool) {
        if let Some(slot) = self.names.get_mut(self.len) {
            *slot = (start, is_root);
            self.len += 1;
        }
    }

    fn get(&self, start: usize) -> Option<bool> {
        self.names[..self.len]
            .iter()
            .find(|(s, _)| *s == start)
            .map(|&(_, is_root)| is_root)
    }
}

/// Reads an owner name at `at`; returns where it ends and whether it is the root.
///
/// The usual owner is a lone pointer to a name read in full before (the question, a CNAME
/// target). Reading it again would give the same result: hickory-proto checks that the
/// pointer points before itself, then reads the name there under one more bound, that no
/// length byte of its first part sits at or beyond the pointer, which that name's first part
/// met already, as it lies wholly before the pointer (it was read in place, earlier in the
/// message); past its own first pointer, both readings apply the same bounds. So the earlier
/// result is reused.
fn read_owner(msg: &[u8], at: usize, known: &mut KnownNames) -> Option<(usize, bool)> {
    if let Some(&[high, low]) = msg.get(at..at + 2).and_then(|b| b.first_chunk::<2>())
        && high & 0xC0 == 0xC0
    {
        let target = usize::from(u16::from_be_bytes([high & 0x3F, low]));
        if target < at
            && let Some(is_root) = known.get(target)
        {
            return Some((at + 2, is_root));
        }
    }
    let mut labels = 0usize;
    let end = read_name(msg, at, |_| labels += 1)?;
    known.add(at, labels == 0);
    Some((end, labels == 0))
}

/// Reads the name starting at `start` as hickory-proto's `Name::read` does, calling
/// `on_label` with each label in order; returns where the name ends in the message (after
/// its root label, or after its first compression pointer).
///
/// hickory-proto's rules, replayed: a pointer must point before the start of the part of the
/// name that holds it (the name's first byte, or the previous pointer's target), and once a
/// pointer has been followed, no length byte or pointer may sit at or beyond the start of the
/// part that pointed. Label types 01 and 10 are rejected, and so is a name whose encoding
/// (labels plus the root) would exceed 255 bytes.
fn read_name(msg: &[u8], start: usize, mut on_label: impl FnMut(&[u8])) -> Option<usize> {
    let mut part_start = start;
    let mut limit = usize::MAX;
    let mut at = start;
    let mut end = None;
    let mut encoded = 1;
    loop {
        if at >= limit {
            return None;
        }
        let byte = *msg.get(at)?;
        match byte >> 6 {
            0 if byte == 0 => return Some(end.unwrap_or(at + 1)),
            0 => {
                let len = usize::from(byte);
                let label = msg.get(at + 1..at + 1 + len)?;
                encoded += len + 1;
                if encoded > MAX_NAME_LEN {
                    return None;
                }
                on_label(label);
                at += 1 + len;
            }
            0b11 => {
                let low = *msg.get(at + 1)?;
                let target = usize::from(u16::from_be_bytes([byte & 0x3F, low]));
                if target >= part_start {
                    return None;
                }
                end.get_or_insert(at + 2);
                limit = part_start;
                part_start = target;
                at = target;
            }
            _ => return None,
        }
    }
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let bytes = msg.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `a.example.` A, by hand: one CNAME (compressed) and one A.
    fn by_hand() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        // a.example. CNAME b.example.
        m.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x04\x01b\xc0\x0e");
        // b.example. A 192.0.2.1
        m.extend_from_slice(b"\xc0\x27\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\xc0\x00\x02\x01");
        m
    }

    #[test]
    fn hand_made_response_is_observed() {
        let mut buf = ObservationBuf::new();
        assert_eq!(observe_fast(&by_hand(), &mut buf), FastPath::Observed);
        assert_eq!(buf.id(), 0x1234);
        assert_eq!(buf.qname(), "a.example.");
        assert_eq!(buf.cnames().collect::<Vec<_>>(), ["b.example."]);
        assert_eq!(buf.addresses(), [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
        assert_eq!(buf.ttl(), 30);
    }

    #[test]
    fn pointer_to_itself_is_declined() {
        let mut m = by_hand();
        // The second answer's owner points at itself.
        m[43] = 0xc0;
        m[44] = 43;
        assert_eq!(
            observe_fast(&m, &mut ObservationBuf::new()),
            FastPath::Declined
        );
    }

    #[test]
    fn pointer_forward_into_the_name_is_declined() {
        let mut m = by_hand();
        // The CNAME target's suffix pointer points at its own first label.
        let at = m.len() - 16 - 2;
        m[at + 1] = u8::try_from(at - 2).unwrap();
        assert_eq!(
            observe_fast(&m, &mut ObservationBuf::new()),
            FastPath::Declined
        );
    }

    #[test]
    fn every_truncation_is_declined() {
        let m = by_hand();
        for len in 0..m.len() {
            assert_eq!(
                observe_fast(&m[..len], &mut ObservationBuf::new()),
                FastPath::Declined,
                "{len}"
            );
        }
    }
}
