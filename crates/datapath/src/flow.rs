//! What a verdict produces: [`Verdict`] and [`FlowEvent`], shaped after Hubble's `Flow`, the
//! same for every backend.

use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DnsAllow, DropReason, MatchType, PolicyKey};

use crate::packet::Packet;

/// Hubble's verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// `FORWARDED`.
    Forwarded,
    /// `DROPPED`.
    Dropped,
    /// `REDIRECTED` (to the DNS proxy).
    Redirected,
}

impl Verdict {
    /// Hubble's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Forwarded => "FORWARDED",
            Self::Dropped => "DROPPED",
            Self::Redirected => "REDIRECTED",
        }
    }
}

/// One verdict, shaped after Hubble's `Flow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEvent {
    /// When.
    pub time: Timestamp,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it was dropped.
    pub drop_reason: Option<DropReason>,
    /// `EGRESS` (true) or `INGRESS`.
    pub egress: bool,
    /// The endpoint on our side, if known.
    pub endpoint: Option<EndpointId>,
    /// The packet.
    pub packet: Packet,
    /// Source identity.
    pub src_identity: Identity,
    /// Destination identity.
    pub dst_identity: Identity,
    /// Whether it answers a tracked flow.
    pub is_reply: bool,
    /// How the policy matched (none for replies and drops without a match).
    pub match_type: Option<MatchType>,
    /// The policy key that decided, if any.
    pub policy_key: Option<PolicyKey>,
    /// For a redirect: the names the DNS proxy allows.
    pub dns: Option<DnsAllow>,
}

/// The event of a frame dropped by the parser: no endpoint, no identities.
pub fn invalid_frame_event(
    partial: &Packet,
    reason: DropReason,
    egress: bool,
    now: Timestamp,
) -> FlowEvent {
    FlowEvent {
        time: now,
        verdict: Verdict::Dropped,
        drop_reason: Some(reason),
        egress,
        endpoint: None,
        packet: *partial,
        src_identity: Identity::ANY,
        dst_identity: Identity::ANY,
        is_reply: false,
        match_type: None,
        policy_key: None,
        dns: None,
    }
}
