//! Who a flow is between: [`Endpoint`]s (with their [`Workload`]s), [`Service`]s, and the
//! [`Policy`] objects that allowed or denied it.

use serde::{Deserialize, Serialize};

use crate::wire;

/// One end of a flow (`flow.Endpoint`): a Cilium endpoint, or a remote identity with no
/// endpoint (`ID` unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// The endpoint's ID on its node (`ID`).
    #[serde(
        rename = "ID",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub id: Option<u32>,
    /// Its security identity.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub identity: Option<u32>,
    /// The cluster it is in (Cluster Mesh).
    #[serde(
        alias = "clusterName",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub cluster_name: String,
    /// Its pod's namespace.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub namespace: String,
    /// Its identity's labels, `source:key=value` (`k8s:app=web`, `reserved:world`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Its pod's name.
    #[serde(
        alias = "podName",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub pod_name: String,
    /// The workloads (Deployment, `DaemonSet`, ...) that own the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<Workload>>,
}

/// A workload that owns a pod (`flow.Workload`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workload {
    /// Its name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub name: String,
    /// Its kind (`Deployment`, `DaemonSet`, ...).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub kind: String,
}

/// A Kubernetes service at one end of a flow (`flow.Service`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Its name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub name: String,
    /// Its namespace.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub namespace: String,
}

/// A policy that allowed or denied a flow (`flow.Policy`, in `egress_allowed_by` and its
/// siblings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Its name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub name: String,
    /// Its namespace (empty for a clusterwide policy).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub namespace: String,
    /// The labels of the rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The policy revision (a 64-bit integer: a string in JSON).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::opt_u64_str",
        deserialize_with = "wire::opt_int"
    )]
    pub revision: Option<u64>,
    /// Its kind (`CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy`, ...).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub kind: String,
}
