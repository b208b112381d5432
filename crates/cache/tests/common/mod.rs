//! Helpers shared by the cache crate's tests (`mod common;` in each file that uses them).
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses its own share of the helpers"
)]

use std::net::IpAddr;

use fqdnpath_cache::hickory_proto::rr::RecordType;
use fqdnpath_cache::wire::ResponseBuilder;

/// An address written as text.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The wire bytes of a response (ID 1) to `qname` with one address record of `owner`, TTL 60.
pub fn single_answer(qname: &str, qtype: RecordType, owner: &str, addr: &str) -> Vec<u8> {
    ResponseBuilder::new(1, qname, qtype)
        .address(owner, ip(addr), 60)
        .to_wire()
        .unwrap()
}

/// The wire bytes of a built response.
pub fn wire(builder: &ResponseBuilder) -> Vec<u8> {
    builder.to_wire().unwrap()
}
