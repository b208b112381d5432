//! Cilium's policy resources, the third layer of fqdnpath.
//!
//! - [`manifest`]: `CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy` and
//!   `CiliumLocalRedirectPolicy` (`cilium.io/v2`) from multi-document YAML, with Cilium's
//!   validation rules. Errors name the file, the document, the key path and the reason; unknown
//!   fields are warnings with their path. Egress rules are modelled for enforcement; ingress
//!   rules are parsed, validated and kept, but not enforced yet.
//!
//! Identities and the compilation of policies into datapath map entries come next (see the
//! project's ARCHITECTURE.md).
#![forbid(unsafe_code)]

pub mod manifest;

pub use manifest::{
    Loaded, Located, Manifest, ManifestError, Origin, Warning, load_file, load_str,
};
