//! `steps[]`: the timeline. Each entry is read as written (every key optional, unknown keys
//! rejected with their path), then turned into a [`Step`] whose [`Action`] is the one step
//! kind it sets, so a step that sets none, or two, is an error of the file, not of the run.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use fqdnpath_policy::policymap::{PROTO_TCP, PROTO_UDP};
use serde::{Deserialize, Deserializer};

use super::{Dur, ManifestSource, ZoneRecord};

/// One step: exactly one action, when it runs (`at`) and what must hold after it (`expect`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    /// Run at this time since the start (not before the current time).
    pub at: Option<Dur>,
    /// What the step does.
    pub action: Action,
    /// Expectations.
    pub expect: Option<Expect>,
}

/// What a step does: one variant per step kind.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// `at` alone: time moves to `at`, nothing else happens.
    Wait,
    /// `resolve`: resolve a name through the pod's resolver.
    Resolve(ResolveStep),
    /// `connect`: open a connection.
    Connect(ConnectStep),
    /// `advance`: move time forward.
    Advance(Dur),
    /// `send`: a later packet of a connection.
    Send(ConnectionRef),
    /// `close`: close a connection.
    Close(ConnectionRef),
    /// `apply`: apply manifests.
    Apply(ManifestSource),
    /// `delete`: delete a manifest.
    Delete(DeleteStep),
    /// `restart-agent`: restart a node's agent.
    RestartAgent(RestartStep),
    /// `update-zone`: change the authoritative zone.
    UpdateZone(Vec<ZoneRecord>),
}

/// A step as written: every step kind's key optional.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "struct Step"
)]
struct RawStep {
    at: Option<Dur>,
    resolve: Option<ResolveStep>,
    connect: Option<ConnectStep>,
    advance: Option<Dur>,
    send: Option<ConnectionRef>,
    close: Option<ConnectionRef>,
    apply: Option<ManifestSource>,
    delete: Option<DeleteStep>,
    restart_agent: Option<RestartStep>,
    update_zone: Option<Vec<ZoneRecord>>,
    expect: Option<Expect>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, String> {
        let set = [
            ("resolve", raw.resolve.map(Action::Resolve)),
            ("connect", raw.connect.map(Action::Connect)),
            ("advance", raw.advance.map(Action::Advance)),
            ("send", raw.send.map(Action::Send)),
            ("close", raw.close.map(Action::Close)),
            ("apply", raw.apply.map(Action::Apply)),
            ("delete", raw.delete.map(Action::Delete)),
            ("restart-agent", raw.restart_agent.map(Action::RestartAgent)),
            ("update-zone", raw.update_zone.map(Action::UpdateZone)),
        ];
        let (names, mut actions): (Vec<&str>, Vec<Action>) = set
            .into_iter()
            .filter_map(|(name, action)| Some((name, action?)))
            .unzip();
        if actions.len() > 1 {
            return Err(format!(
                "a step has one action; this one has {}",
                names.join(", ")
            ));
        }
        let action = match actions.pop() {
            Some(action) => action,
            None if raw.at.is_some() => Action::Wait,
            None => {
                return Err("a step needs one action (resolve, connect, advance, send, close, apply, delete, restart-agent, update-zone)".into());
            }
        };
        Ok(Self {
            at: raw.at,
            action,
            expect: raw.expect,
        })
    }
}

/// `resolve:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveStep {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The name.
    pub name: String,
    /// `A` (default) or `AAAA`.
    #[serde(default, rename = "type")]
    pub kind: QueryType,
}

/// The type of a `resolve`'s query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueryType {
    /// IPv4 addresses.
    #[default]
    A,
    /// IPv6 addresses.
    Aaaa,
}

impl<'de> Deserialize<'de> for QueryType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)?.as_deref() {
            None | Some("A") => Ok(Self::A),
            Some("AAAA") => Ok(Self::Aaaa),
            Some(other) => Err(serde::de::Error::custom(format!(
                "{other} is not A or AAAA"
            ))),
        }
    }
}

/// `connect:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawConnect")]
pub struct ConnectStep {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// Where to.
    pub to: Destination,
    /// Destination port.
    pub port: u16,
    /// `TCP` (default) or `UDP`.
    pub protocol: Protocol,
    /// A name to refer to the connection later.
    pub alias: Option<String>,
}

/// Where a `connect` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `ip`: this address.
    Ip(IpAddr),
    /// `name`: the first address the pod last got for this name.
    Name(String),
}

/// A `connect` as written, before the check that it sets exactly one of `ip` and `name`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct ConnectStep")]
struct RawConnect {
    pod: String,
    ip: Option<IpAddr>,
    name: Option<String>,
    port: u16,
    #[serde(default)]
    protocol: Protocol,
    #[serde(rename = "as")]
    alias: Option<String>,
}

impl TryFrom<RawConnect> for ConnectStep {
    type Error = &'static str;

    fn try_from(raw: RawConnect) -> Result<Self, Self::Error> {
        let to = match (raw.ip, raw.name) {
            (Some(ip), None) => Destination::Ip(ip),
            (None, Some(name)) => Destination::Name(name),
            _ => return Err("set exactly one of ip or name"),
        };
        Ok(Self {
            pod: raw.pod,
            to,
            port: raw.port,
            protocol: raw.protocol,
            alias: raw.alias,
        })
    }
}

/// The transport of a connection: `TCP` or `UDP`, in any case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => PROTO_TCP,
            Self::Udp => PROTO_UDP,
        }
    }
}

/// A protocol other than TCP and UDP.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{written} is not TCP or UDP")]
pub struct UnknownProtocol {
    /// What was written, in upper case.
    pub written: String,
}

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(text: &str) -> Result<Self, UnknownProtocol> {
        match text.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Self::Tcp),
            "UDP" => Ok(Self::Udp),
            other => Err(UnknownProtocol {
                written: other.to_owned(),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

/// `send:` / `close:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionRef {
    /// The alias given by `connect.as`.
    pub connection: String,
}

/// `delete:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteStep {
    /// The kind.
    pub kind: String,
    /// The namespace.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

/// `restart-agent:`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartStep {
    /// The node.
    pub node: String,
}

/// `expect:`: what must hold after the step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The DNS response code (`NOERROR`, `NXDOMAIN`, `REFUSED`, `SERVFAIL`, `TIMEOUT`).
    pub rcode: Option<String>,
    /// The answer's addresses.
    pub ips: Option<Vec<IpAddr>>,
    /// `FORWARDED`, `DROPPED` or `REDIRECTED`.
    pub verdict: Option<String>,
    /// `POLICY_DENIED` or `POLICY_DENY`.
    pub drop_reason: Option<String>,
    /// How long the proxy held the response.
    pub held: Option<Dur>,
    /// The destination's identity.
    pub identity: Option<u32>,
    /// `L3_ONLY`, `L3_L4`, `L4_ONLY`, `ALL`, `L3_PROTO`, `PROTO_ONLY`.
    pub policy_match_type: Option<String>,
}
