//! Cilium's policy resources, the third layer of fqdnpath.
//!
//! - [`manifest`]: `CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy` and
//!   `CiliumLocalRedirectPolicy` (`cilium.io/v2`) from multi-document YAML, with Cilium's
//!   validation rules. Errors name the file, the document, the key path and the reason; unknown
//!   fields are warnings with their path. Egress rules are modelled for enforcement; ingress
//!   rules are parsed, validated and kept, but not enforced yet.
//!
//! - [`labels`]: Cilium's `source:key=value` labels, endpoint selectors over them, the
//!   namespace defaulting of a policy's selectors, and entities.
//! - [`identity`]: security identities, numbered as Cilium numbers them (reserved, global
//!   endpoint identities from 256, node-local CIDR/FQDN identities in the `1 << 24` scope), one
//!   per distinct label set.
//!
//! - [`policymap`]: an endpoint's egress policy map (keys of identity, protocol and port
//!   prefix; allow, deny or redirect to the DNS proxy) and its lookup as Cilium's datapath
//!   does it. The key, action and verdict types have a file each under `policymap/`.
//! - [`compile`]: policies, endpoints and the DNS cache's global view in; the ipcache and the
//!   policy maps out, and only the changes when an IP's names change. How one rule becomes
//!   map entries is in `compile/rule.rs`.
//! - [`table`]: the flat hash table behind the lookups on every packet's path (the policy
//!   map's here; the ipcache's, the endpoints' and conntrack's in fqdnpath-datapath).
#![forbid(unsafe_code)]

pub mod compile;
pub mod identity;
pub mod labels;
pub mod manifest;
pub mod policymap;
pub mod table;

pub use manifest::{
    Loaded, Located, Manifest, ManifestError, Origin, Warning, load_file, load_str,
};
