//! Who a flow is between: [`Endpoint`]s (with their [`Workload`]s), [`Service`]s, and the
//! [`Policy`] objects that allowed or denied it.

use crate::wire::message;

message! {
    /// One end of a flow (`flow.Endpoint`): a Cilium endpoint, or a remote identity with no
    /// endpoint (`ID` unset).
    pub struct Endpoint {
        /// The endpoint's ID on its node (`ID`).
        #[serde(rename = "ID")]
        pub id: Option<u32>,
        /// Its security identity.
        pub identity: Option<u32>,
        /// The cluster it is in (Cluster Mesh).
        pub cluster_name: String,
        /// Its pod's namespace.
        pub namespace: String,
        /// Its identity's labels, `source:key=value` (`k8s:app=web`, `reserved:world`).
        pub labels: Option<Vec<String>>,
        /// Its pod's name.
        pub pod_name: String,
        /// The workloads (Deployment, `DaemonSet`, ...) that own the pod.
        pub workloads: Option<Vec<Workload>>,
    }

    /// A workload that owns a pod (`flow.Workload`).
    pub struct Workload {
        /// Its name.
        pub name: String,
        /// Its kind (`Deployment`, `DaemonSet`, ...).
        pub kind: String,
    }

    /// A Kubernetes service at one end of a flow (`flow.Service`).
    pub struct Service {
        /// Its name.
        pub name: String,
        /// Its namespace.
        pub namespace: String,
    }

    /// A policy that allowed or denied a flow (`flow.Policy`, in `egress_allowed_by` and its
    /// siblings).
    pub struct Policy {
        /// Its name.
        pub name: String,
        /// Its namespace (empty for a clusterwide policy).
        pub namespace: String,
        /// The labels of the rule that matched.
        pub labels: Option<Vec<String>>,
        /// The policy revision (a 64-bit integer: a string in JSON).
        pub revision: Option<u64>,
        /// Its kind (`CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy`, ...).
        pub kind: String,
    }
}
