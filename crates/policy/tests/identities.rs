//! Labels, selectors with Cilium's namespace defaulting, entities, and identity numbering.

use std::collections::BTreeMap;

use fqdnpath_policy::identity::{
    Identity, IdentityAllocator, RESERVED, fqdn_labels, reserved_identity, reserved_labels,
};
use fqdnpath_policy::labels::{
    EndpointSelector, Label, Labels, entity_selectors, peer_selector, subject_selector,
};
use fqdnpath_policy::manifest::types::{LabelSelector, Operator, Requirement};

fn pod(namespace: &str, labels: &[(&str, &str)]) -> Labels {
    let map: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Labels::pod(namespace, &map)
}

fn selector(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        match_expressions: Vec::new(),
    }
}

#[test]
fn keys_without_a_source_match_any_source_and_k8s_keys_only_pod_labels() {
    let dns = pod("kube-system", &[("k8s-app", "kube-dns")]);
    assert!(EndpointSelector::from_k8s(&selector(&[("k8s-app", "kube-dns")])).matches(&dns));
    assert!(EndpointSelector::from_k8s(&selector(&[("k8s:k8s-app", "kube-dns")])).matches(&dns));
    assert!(
        !EndpointSelector::from_k8s(&selector(&[("reserved:k8s-app", "kube-dns")])).matches(&dns)
    );
    assert!(!EndpointSelector::from_k8s(&selector(&[("k8s-app", "node-local-dns")])).matches(&dns));
    assert!(EndpointSelector::all().matches(&dns));
}

#[test]
fn match_expressions_follow_kubernetes_operators() {
    let labels = pod("default", &[("tier", "web")]);
    let expr = |operator, values: &[&str]| {
        EndpointSelector::from_k8s(&LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: "tier".into(),
                operator,
                values: values.iter().map(|v| (*v).to_owned()).collect(),
            }],
        })
    };
    assert!(expr(Operator::In, &["web", "db"]).matches(&labels));
    assert!(!expr(Operator::NotIn, &["web"]).matches(&labels));
    assert!(expr(Operator::NotIn, &["db"]).matches(&labels));
    assert!(expr(Operator::Exists, &[]).matches(&labels));
    assert!(!expr(Operator::DoesNotExist, &[]).matches(&labels));
    assert!(expr(Operator::NotIn, &["x"]).matches(&pod("default", &[])));
}

#[test]
fn a_namespaced_policy_selects_only_its_own_namespace() {
    let subject = subject_selector(Some("default"), &selector(&[("app", "dns-client")]));
    assert!(subject.matches(&pod("default", &[("app", "dns-client")])));
    assert!(!subject.matches(&pod("other", &[("app", "dns-client")])));
    // A namespace written in matchLabels is replaced by the policy's own.
    let subject = subject_selector(
        Some("default"),
        &selector(&[("app", "a"), ("k8s:io.kubernetes.pod.namespace", "other")]),
    );
    assert!(subject.matches(&pod("default", &[("app", "a")])));
    assert!(!subject.matches(&pod("other", &[("app", "a")])));
    // A clusterwide policy's subject is not confined.
    assert!(subject_selector(None, &selector(&[("app", "a")])).matches(&pod("x", &[("app", "a")])));
}

#[test]
fn peers_default_to_the_policy_namespace_unless_they_name_one() {
    let kube_dns = pod("kube-system", &[("k8s-app", "kube-dns")]);
    // The article's selector names the namespace explicitly: it reaches kube-system.
    let named = peer_selector(
        Some("default"),
        &selector(&[
            ("k8s:io.kubernetes.pod.namespace", "kube-system"),
            ("k8s:k8s-app", "kube-dns"),
        ]),
        false,
    );
    assert!(named.matches(&kube_dns));
    // Without it, the peer is looked for in the policy's namespace only.
    let unnamed = peer_selector(
        Some("default"),
        &selector(&[("k8s-app", "kube-dns")]),
        false,
    );
    assert!(!unnamed.matches(&kube_dns));
    assert!(unnamed.matches(&pod("default", &[("k8s-app", "kube-dns")])));
    // In a clusterwide policy an empty peer selects every pod, but not reserved identities.
    let everyone = peer_selector(None, &LabelSelector::default(), false);
    assert!(everyone.matches(&kube_dns));
    assert!(!everyone.matches(&reserved_labels(Identity::WORLD).unwrap()));
    // A selector of reserved labels is left alone.
    let host = peer_selector(Some("default"), &selector(&[("reserved:host", "")]), false);
    assert!(host.matches(&reserved_labels(Identity::HOST).unwrap()));
}

#[test]
fn entities_select_reserved_identities_and_cluster_pods() {
    let world = entity_selectors("world").unwrap();
    let any = |sels: &[EndpointSelector], l: &Labels| sels.iter().any(|s| s.matches(l));
    assert!(any(&world, &reserved_labels(Identity::WORLD).unwrap()));
    assert!(any(&world, &fqdn_labels(["github.com."])));
    assert!(!any(&world, &pod("default", &[])));
    let cluster = entity_selectors("cluster").unwrap();
    assert!(any(&cluster, &pod("default", &[])));
    assert!(any(&cluster, &reserved_labels(Identity::HOST).unwrap()));
    assert!(!any(&cluster, &reserved_labels(Identity::WORLD).unwrap()));
    assert!(!any(
        &entity_selectors("none").unwrap(),
        &pod("default", &[])
    ));
    assert!(any(&entity_selectors("all").unwrap(), &pod("default", &[])));
    assert!(entity_selectors("everything").is_none());
}

#[test]
fn reserved_identities_are_numbered_as_in_cilium() {
    let numbers: Vec<(u32, String)> = (1..=10)
        .map(|n| (n, reserved_labels(Identity(n)).unwrap().to_string()))
        .collect();
    let expected = [
        "reserved:host",
        "reserved:world",
        "reserved:unmanaged",
        "reserved:health",
        "reserved:init",
        "reserved:remote-node",
        "reserved:kube-apiserver",
        "reserved:ingress",
        "reserved:world-ipv4",
        "reserved:world-ipv6",
    ];
    for ((n, got), want) in numbers.iter().zip(expected) {
        assert_eq!(got, want, "identity {n}");
    }
    let mut alloc = IdentityAllocator::new();
    assert_eq!(
        alloc.allocate(&reserved_labels(Identity::WORLD).unwrap()),
        Ok(Identity::WORLD)
    );
}

#[test]
fn one_identity_per_label_set_endpoints_global_fqdn_local() {
    let mut alloc = IdentityAllocator::new();
    let a = alloc.allocate(&pod("default", &[("app", "a")])).unwrap();
    let a2 = alloc.allocate(&pod("default", &[("app", "a")])).unwrap();
    let b = alloc.allocate(&pod("default", &[("app", "b")])).unwrap();
    assert_eq!((a, a2, b), (Identity(256), Identity(256), Identity(257)));
    // Every IP learned for the same selector set shares one local identity.
    let github = alloc.allocate(&fqdn_labels(["github.com."])).unwrap();
    let both = alloc
        .allocate(&fqdn_labels(["github.com.", "*.github.com."]))
        .unwrap();
    assert!(github.is_local() && both.is_local());
    assert_eq!(github, Identity((1 << 24) | 1));
    assert_eq!(both, Identity((1 << 24) | 2));
    assert_eq!(alloc.lookup(&fqdn_labels(["github.com."])), Some(github));
    let cidr: Labels = [
        Label::new("cidr", "10.0.0.0/8", ""),
        Label::new("reserved", "world", ""),
    ]
    .into_iter()
    .collect();
    assert!(alloc.allocate(&cidr).unwrap().is_local());
    // References: freed with the last one.
    assert!(!alloc.release(a));
    assert!(alloc.release(a));
    assert_eq!(alloc.labels(a), None);
    assert_eq!(alloc.labels(b).unwrap(), pod("default", &[("app", "b")]));
    // A freed number is not handed out again at once.
    assert_eq!(
        alloc.allocate(&pod("default", &[("app", "c")])).unwrap(),
        Identity(258)
    );
}

#[test]
fn reserved_identity_recognises_exactly_the_reserved_label_sets() {
    for (id, _) in RESERVED {
        let labels = reserved_labels(*id).unwrap();
        assert_eq!(reserved_identity(&labels), Some(*id));
    }
    let set = |labels: &[Label]| labels.iter().cloned().collect::<Labels>();
    for not_reserved in [
        set(&[]),
        set(&[Label::new("reserved", "nobody", "")]),
        set(&[Label::new("reserved", "world", "x")]),
        set(&[Label::new("k8s", "world", "")]),
        set(&[
            Label::new("reserved", "world", ""),
            Label::new("fqdn", "a.com.", ""),
        ]),
    ] {
        assert_eq!(reserved_identity(&not_reserved), None, "{not_reserved:?}");
    }
}
