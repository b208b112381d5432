//! The checks of `toCIDR` and `toCIDRSet` entries, and the prefix parsing and containment the
//! compiler shares.

use std::net::IpAddr;

use super::{Failure, fail};
use crate::manifest::types::CidrRule;

/// An IP prefix `addr/len` (the address need not be the network address, as in Go).
pub(crate) fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if len.is_empty()
        || len.len() > 3
        || !len.bytes().all(|b| b.is_ascii_digit())
        || (len.len() > 1 && len.starts_with('0'))
    {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

/// Whether `prefix` contains `addr` (same family).
pub(crate) fn contains(prefix: (IpAddr, u8), addr: IpAddr) -> bool {
    match (prefix.0, addr) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.1)).unwrap_or(0);
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.1))
                .unwrap_or(0);
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// A `toCIDR` entry: a prefix or a plain address.
pub(super) fn cidr(path: &str, text: &str) -> Result<(), Failure> {
    if text.is_empty() {
        return fail(path, "IP must be specified");
    }
    if parse_prefix(text).is_some() || text.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    fail(path, format!("unable to parse CIDR {text:?}"))
}

pub(super) fn cidr_rule(path: &str, rule: &CidrRule) -> Result<(), Failure> {
    let set = [
        rule.cidr.as_deref().is_some_and(|c| !c.is_empty()),
        rule.cidr_group_ref
            .as_deref()
            .is_some_and(|c| !c.is_empty()),
        rule.cidr_group_selector.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set == 0 {
        return fail(
            path,
            "one of cidr, cidrGroupRef, or cidrGroupSelector is required",
        );
    }
    if set > 1 {
        return fail(
            path,
            "more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set",
        );
    }
    let Some(text) = rule.cidr.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let Some(prefix) = parse_prefix(text) else {
        return fail(
            format!("{path}.cidr"),
            format!("unable to parse CIDRRule {text:?}"),
        );
    };
    for (i, except) in rule.except.iter().enumerate() {
        let Some(e) = parse_prefix(except) else {
            return fail(
                format!("{path}.except[{i}]"),
                format!("unable to parse {except:?} as a prefix"),
            );
        };
        if prefix.1 > e.1 || !contains(prefix, e.0) {
            return fail(
                format!("{path}.except[{i}]"),
                format!("allow CIDR prefix {text} does not contain exclude CIDR prefix {except}"),
            );
        }
    }
    Ok(())
}
