//! DNS names and Cilium's FQDN selectors (`matchName`, `matchPattern`), the bottom layer of
//! fqdnpath.
//!
//! - [`name`]: names in the form Cilium compares them ([`Fqdn`], [`normalize`]): ASCII
//!   lower-case with a trailing dot.
//! - [`selector`]: one selector ([`FqdnSelector`], [`Pattern`]) with Cilium's validation
//!   (character set, 255-byte limit) and matching rules: `*` stands for zero or more of
//!   `[-a-zA-Z0-9_]` within one label, a pattern of only stars matches every name, and a leading
//!   `**.` stands for one or more whole labels.
//! - [`set`]: a [`SelectorSet`] that returns every selector matching a name in one pass over the
//!   name, in time that does not grow with the number of selectors (Cilium runs one regular
//!   expression per selector). Inside it, a suffix table keys the selectors whose rest is
//!   literal and `set::trie` walks reversed labels for the others.
//! - [`rcode`]: DNS response codes by their mnemonics.
//! - [`time`] and [`endpoint`]: the two base types every crate above shares: [`Timestamp`]
//!   (time is an input, never read from a clock) and [`EndpointId`].
//!
//! Nothing here reads a clock or touches the OS.
#![forbid(unsafe_code)]

pub mod endpoint;
mod keyhash;
pub mod name;
pub mod rcode;
pub mod selector;
pub mod set;
mod swar;
pub mod time;

pub use endpoint::EndpointId;
pub use name::{Fqdn, normalize};
pub use rcode::rcode_name;
pub use selector::{
    FqdnSelector, MAX_SELECTOR_LEN, Pattern, SelectorError, SelectorField, Validation,
};
pub use set::{SelectorId, SelectorSet};
pub use time::Timestamp;
