//! Service translation, which Cilium does before policy: a packet to a `ClusterIP` goes to one
//! of the service's backends, and a `CiliumLocalRedirectPolicy` can send it to a backend on the
//! client's own node instead. Policy then judges the translated destination, which is why a
//! rule that allows only `kube-dns` drops DNS once node-local-dns sits behind an LRP.
//!
//! LRP rules kept from Cilium:
//! - a `serviceMatcher` redirects the service's `ClusterIP`: every service port when it lists no
//!   `toPorts`, else the listed ones; an `addressMatcher` redirects an IP and its ports;
//! - backends are the pods on the client's node in the LRP's namespace that
//!   `localEndpointSelector` selects; frontend and backend ports pair by name (a single
//!   frontend port and a single backend port pair as they are);
//! - with no local backend on the node, a service keeps its regular backends; an address
//!   frontend has none, and its traffic goes out untranslated;
//! - `skipRedirectFromBackend`: traffic from the backend pods themselves is not redirected.
//!
//! Among several backends the choice is a hash of the flow (as Cilium's random or Maglev
//! selection), fixed here so that runs are deterministic.

use std::hash::BuildHasher;
use std::net::IpAddr;

use foldhash::fast::FixedState;
use fqdnpath_policy::labels::{EndpointSelector, Labels};
use fqdnpath_policy::manifest::LocalRedirectPolicy;
use fqdnpath_policy::manifest::{parse_port, port_protocol};

/// A port of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name, which LRPs pair by.
    pub name: Option<String>,
    /// The service port.
    pub port: u16,
    /// Its protocol.
    pub proto: u8,
    /// The port on the backends.
    pub target_port: u16,
}

/// A Kubernetes service with a `ClusterIP`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The `ClusterIP`.
    pub cluster_ip: IpAddr,
    /// Its ports.
    pub ports: Vec<ServicePort>,
    /// The backend pods' IPs, in order.
    pub backends: Vec<IpAddr>,
}

/// A pod as a redirect backend candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Its IP.
    pub ip: IpAddr,
    /// Its node.
    pub node: String,
    /// Its namespace.
    pub namespace: String,
    /// Its labels (with the namespace label, see `Labels::pod`).
    pub labels: Labels,
}

/// A frontend port of a redirect: (name, port, protocol).
type FrontendPort = (Option<String>, u16, u8);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Frontend {
    Service {
        namespace: String,
        name: String,
        ports: Vec<FrontendPort>,
    },
    Address {
        ip: IpAddr,
        ports: Vec<FrontendPort>,
    },
}

/// A Local Redirect Policy, resolved against the cluster's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRedirect {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    frontend: Frontend,
    /// Backend pods per node: (IP, node).
    backends: Vec<(IpAddr, String)>,
    /// Backend ports: (name, port, protocol).
    backend_ports: Vec<FrontendPort>,
    skip_from_backend: bool,
}

fn lrp_ports(ports: &[fqdnpath_policy::manifest::types::LrpPort]) -> Vec<FrontendPort> {
    ports
        .iter()
        .filter_map(|p| {
            Some((
                p.name.as_ref().map(|n| n.to_ascii_lowercase()),
                parse_port(&p.port.0)?,
                port_protocol(&p.protocol)?,
            ))
        })
        .collect()
}

impl LocalRedirect {
    /// Resolves a (validated) LRP: its backends are the `pods` in its namespace that its
    /// `localEndpointSelector` selects.
    pub fn new(lrp: &LocalRedirectPolicy, pods: &[Pod]) -> Self {
        let namespace = lrp
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let spec = &lrp.spec;
        let frontend = match (
            &spec.redirect_frontend.service_matcher,
            &spec.redirect_frontend.address_matcher,
        ) {
            (Some(s), _) => Frontend::Service {
                namespace: s.namespace.clone(),
                name: s.service_name.clone(),
                ports: lrp_ports(&s.to_ports),
            },
            (None, Some(a)) => Frontend::Address {
                ip: a.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
                ports: lrp_ports(&a.to_ports),
            },
            (None, None) => Frontend::Address {
                ip: IpAddr::from([0, 0, 0, 0]),
                ports: Vec::new(),
            },
        };
        let selector = EndpointSelector::from_k8s(&spec.redirect_backend.local_endpoint_selector);
        let backends = pods
            .iter()
            .filter(|p| p.namespace == namespace && selector.matches(&p.labels))
            .map(|p| (p.ip, p.node.clone()))
            .collect();
        Self {
            namespace,
            name: lrp.metadata.name.clone(),
            frontend,
            backends,
            backend_ports: lrp_ports(&spec.redirect_backend.to_ports),
            skip_from_backend: spec.skip_redirect_from_backend,
        }
    }

    /// The backend port paired with a frontend port.
    fn backend_port(&self, frontend: &FrontendPort, single_frontend: bool) -> Option<u16> {
        if single_frontend && self.backend_ports.len() == 1 {
            let b = &self.backend_ports[0];
            return (b.2 == frontend.2).then_some(b.1);
        }
        let name = frontend.0.as_ref()?;
        self.backend_ports
            .iter()
            .find(|b| b.0.as_ref() == Some(name) && b.2 == frontend.2)
            .map(|b| b.1)
    }
}

/// Where a packet was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A service's regular backends.
    Service {
        /// `namespace/name`.
        service: String,
    },
    /// A Local Redirect Policy.
    LocalRedirect {
        /// `namespace/name`.
        policy: String,
    },
}

/// A translated destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The backend IP.
    pub ip: IpAddr,
    /// The backend port.
    pub port: u16,
    /// Why.
    pub via: Via,
}

/// Services and redirects of the cluster.
#[derive(Clone, Debug, Default)]
pub struct ServiceTable {
    services: Vec<Service>,
    redirects: Vec<LocalRedirect>,
}

impl ServiceTable {
    /// The table of these services and redirects.
    pub fn new(services: Vec<Service>, redirects: Vec<LocalRedirect>) -> Self {
        Self {
            services,
            redirects,
        }
    }

    /// The destination a packet from `client` (on `node`) to `dst:port` really goes to, or
    /// `None` when it is no service or redirect frontend. `flow` picks among backends.
    pub fn translate(
        &self,
        client: IpAddr,
        node: &str,
        dst: IpAddr,
        proto: u8,
        port: u16,
        flow: u64,
    ) -> Option<Translation> {
        let service = self.services.iter().find(|s| s.cluster_ip == dst);
        for lrp in &self.redirects {
            if lrp.skip_from_backend && lrp.backends.iter().any(|(ip, _)| *ip == client) {
                continue;
            }
            let frontend_ports: Vec<FrontendPort> = match &lrp.frontend {
                Frontend::Service {
                    namespace,
                    name,
                    ports,
                } => {
                    let Some(svc) =
                        service.filter(|s| &s.namespace == namespace && &s.name == name)
                    else {
                        continue;
                    };
                    if ports.is_empty() {
                        svc.ports
                            .iter()
                            .map(|p| (p.name.clone(), p.port, p.proto))
                            .collect()
                    } else {
                        ports.clone()
                    }
                }
                Frontend::Address { ip, ports } if *ip == dst => ports.clone(),
                Frontend::Address { .. } => continue,
            };
            let single = frontend_ports.len() == 1;
            let Some(frontend) = frontend_ports.iter().find(|f| f.1 == port && f.2 == proto) else {
                continue;
            };
            let Some(backend_port) = lrp.backend_port(frontend, single) else {
                continue;
            };
            let local: Vec<IpAddr> = lrp
                .backends
                .iter()
                .filter(|(_, n)| n == node)
                .map(|(ip, _)| *ip)
                .collect();
            if let Some(ip) = pick(&local, flow) {
                return Some(Translation {
                    ip,
                    port: backend_port,
                    via: Via::LocalRedirect {
                        policy: format!("{}/{}", lrp.namespace, lrp.name),
                    },
                });
            }
        }
        let svc = service?;
        let sp = svc
            .ports
            .iter()
            .find(|p| p.port == port && p.proto == proto)?;
        let ip = pick(&svc.backends, flow)?;
        Some(Translation {
            ip,
            port: sp.target_port,
            via: Via::Service {
                service: format!("{}/{}", svc.namespace, svc.name),
            },
        })
    }
}

fn pick(backends: &[IpAddr], flow: u64) -> Option<IpAddr> {
    if backends.is_empty() {
        return None;
    }
    let h = FixedState::with_seed(0x4c42).hash_one(flow);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the remainder is below backends.len()"
    )]
    let at = (h % backends.len() as u64) as usize;
    Some(backends[at])
}
