//! [`EndpointId`]: which pod on a node a cache, a policy map or a flow belongs to.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Cilium endpoint ID: one per pod on a node, 16 bits wide as in Cilium (`__u16` in the
/// datapath's endpoint map). The same type names an endpoint in the cache, the compiled policy,
/// the datapath and the simulator.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct EndpointId(pub u16);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for EndpointId {
    fn from(id: u16) -> Self {
        Self(id)
    }
}

impl From<EndpointId> for u16 {
    fn from(id: EndpointId) -> Self {
        id.0
    }
}
