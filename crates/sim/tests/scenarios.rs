//! The example scenarios, run by the tests, and the scenario format's errors.

use std::path::PathBuf;

use fqdnpath_sim::{Scenario, ScenarioError, Simulation};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

fn run(name: &str) -> fqdnpath_sim::Report {
    Simulation::new(Scenario::load(&example(name)).unwrap())
        .unwrap()
        .with_json(true)
        .run()
        .unwrap()
}

#[test]
fn the_gotcha_scenario_drops_dns_redirected_to_node_local_dns() {
    let report = run("nodelocal-lrp-gotcha.yaml");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.checked, 5);
    assert_eq!(
        report.lines[0].text,
        "Nov 29 16:00:00.000 default/dns-client:40000 (ID:256) -> kube-system/node-local-dns-node-1:53 (ID:258) policy-verdict:none EGRESS DENIED (UDP) DROPPED (Policy denied)"
    );
}

#[test]
fn the_fixed_scenario_resolves_connects_and_expires() {
    let report = run("nodelocal-lrp-fixed.yaml");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.checked >= 10);
    assert!(report.lines.iter().any(|l| {
        l.text
            .contains("dns-response github.com. A NOERROR [140.82.112.3]")
    }));
}

#[test]
fn runs_are_deterministic() {
    assert_eq!(
        run("nodelocal-lrp-fixed.yaml"),
        run("nodelocal-lrp-fixed.yaml")
    );
}

fn error(yaml: &str) -> (String, String) {
    let result = Scenario::from_str("s.yaml", yaml).and_then(Simulation::new);
    match result {
        Err(ScenarioError::Invalid { file, path, reason }) => {
            assert_eq!(file, "s.yaml");
            (path, reason)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted"),
    }
}

const HEAD: &str = "apiVersion: fqdnpath/v1\nkind: Scenario\nname: t\ncluster:\n  nodes: [n1]\n  pods: [{name: a, namespace: default, node: n1, ip: 10.0.1.1}]\n";

#[test]
fn unknown_keys_bad_durations_and_unknown_nodes_name_their_path() {
    let (path, reason) = error(&format!("{HEAD}colour: red\n"));
    assert_eq!(path, "colour");
    assert!(reason.contains("unknown field `colour`"), "{reason}");
    let (path, reason) = error(&format!("{HEAD}steps:\n  - advance: 10 parsecs\n"));
    assert_eq!(path, "steps[0].advance");
    assert!(reason.contains("invalid duration"), "{reason}");
    let (path, _) = error(&format!(
        "{HEAD}steps:\n  - connect: {{pod: default/a, ip: 1.2.3.4, port: 80, colour: red}}\n"
    ));
    assert_eq!(path, "steps[0].connect.colour");
    let (path, _) = error(&format!(
        "{HEAD}steps:\n  - {{advance: 1s, close: {{connection: x}}}}\n"
    ));
    assert_eq!(path, "steps[0]");
    let (path, _) = error(&HEAD.replace("node: n1", "node: n9"));
    assert_eq!(path, "cluster.pods[0].node");
    let (path, _) = error(&HEAD.replace("fqdnpath/v1", "fqdnpath/v2"));
    assert_eq!(path, "apiVersion");
    let (path, _) = error(&format!(
        "{HEAD}zone: [{{name: a.com, type: A, ttl: 5, value: not-an-ip}}]\n"
    ));
    assert_eq!(path, "zone[0].value");
}

/// The key path and reason of the error loading `steps` (without building the cluster).
fn load_error(steps: &str) -> (String, String) {
    match Scenario::from_str("s.yaml", &format!("{HEAD}steps:\n{steps}")) {
        Err(ScenarioError::Invalid { file, path, reason }) => {
            assert_eq!(file, "s.yaml");
            (path, reason)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted {steps}"),
    }
}

#[test]
fn steps_are_checked_when_the_file_is_loaded() {
    let cases = [
        (
            "  - connect: {pod: default/a, ip: 1.2.3.4, port: 80, protocol: icmp}\n",
            "steps[0].connect.protocol",
            "ICMP is not TCP or UDP",
        ),
        (
            "  - connect: {pod: default/a, ip: 1.2.3.4, name: a.com, port: 80}\n",
            "steps[0].connect",
            "set exactly one of ip or name",
        ),
        (
            "  - connect: 5\n",
            "steps[0].connect",
            "invalid type: integer `5`, expected struct ConnectStep",
        ),
        (
            "  - advance: 1s\n  - resolve: {pod: default/a, name: a.com, type: MX}\n",
            "steps[1].resolve.type",
            "MX is not A or AAAA",
        ),
        (
            "  - update-zone: [{name: a.com, type: A, value: x}]\n",
            "steps[0].update-zone[0].value",
            "\"x\" is not a valid A value",
        ),
        (
            "  - apply: {}\n",
            "steps[0].apply",
            "set exactly one of path or inline",
        ),
        (
            "  - {}\n",
            "steps[0]",
            "a step needs one action (resolve, connect, advance, send, close, apply, delete, restart-agent, update-zone)",
        ),
        (
            "  - {at: 1s, send: {connection: c}, close: {connection: c}}\n",
            "steps[0]",
            "a step has one action; this one has send, close",
        ),
        (
            "  - 5\n",
            "steps[0]",
            "invalid type: integer `5`, expected struct Step",
        ),
    ];
    for (steps, path, reason) in cases {
        assert_eq!(load_error(steps), (path.into(), reason.into()), "{steps}");
    }
}

#[test]
fn each_step_reads_as_its_one_action() {
    use fqdnpath_sim::scenario::{Action, Destination, Dur, Protocol, QueryType};
    use std::time::Duration;
    let scenario = Scenario::from_str(
        "s.yaml",
        &format!(
            "{HEAD}steps:\n  - at: 5s\n  - {{at: 6s, connect: {{pod: default/a, name: a.com, port: 443, protocol: udp, as: c}}, expect: {{verdict: DROPPED}}}}\n  - resolve: {{pod: default/a, name: a.com, type: AAAA}}\n  - advance: 1m\n"
        ),
    )
    .unwrap();
    let steps = &scenario.steps;
    assert_eq!(steps[0].at, Some(Dur(Duration::from_secs(5))));
    assert_eq!(steps[0].action, Action::Wait);
    let Action::Connect(connect) = &steps[1].action else {
        panic!("{:?}", steps[1].action);
    };
    assert_eq!(connect.to, Destination::Name("a.com".into()));
    assert_eq!(connect.protocol, Protocol::Udp);
    assert_eq!(connect.alias.as_deref(), Some("c"));
    assert_eq!(
        steps[1].expect.as_ref().and_then(|e| e.verdict.as_deref()),
        Some("DROPPED")
    );
    let Action::Resolve(resolve) = &steps[2].action else {
        panic!("{:?}", steps[2].action);
    };
    assert_eq!(resolve.kind, QueryType::Aaaa);
    assert_eq!(
        steps[3].action,
        Action::Advance(Dur(Duration::from_secs(60)))
    );
}

#[test]
fn steps_on_unknown_pods_are_input_errors() {
    let scenario = Scenario::from_str(
        "s.yaml",
        &format!("{HEAD}steps:\n  - resolve: {{pod: default/nobody, name: a.com}}\n"),
    )
    .unwrap();
    let err = Simulation::new(scenario).unwrap().run().unwrap_err();
    assert!(err.to_string().contains("steps[0].resolve.pod"), "{err}");
}

#[test]
fn durations_follow_go_syntax() {
    use fqdnpath_sim::scenario::parse_duration;
    use std::time::Duration;
    assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(parse_duration("-1s"), None);
    assert_eq!(parse_duration(""), None);
}

#[test]
fn policies_apply_live_agents_restart_and_zones_change() {
    let report = run("apply-restart-zone.yaml");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.checked, 14);
}

#[test]
fn every_example_scenario_holds() {
    let dir = example("");
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let report = Simulation::new(Scenario::load(&path).unwrap())
                .unwrap()
                .run()
                .unwrap();
            assert!(
                report.failures.is_empty(),
                "{}: {:?}",
                path.display(),
                report.failures
            );
            assert!(report.checked > 0, "{} checks nothing", path.display());
            ran += 1;
        }
    }
    assert!(ran >= 7, "only {ran} scenarios found");
}

#[test]
fn json_lines_carry_hubbles_field_names() {
    let report = run("nodelocal-lrp-gotcha.yaml");
    let first = &report.lines[0].json;
    assert_eq!(first["node_name"], "node-1");
    let flow = &first["flow"];
    assert_eq!(flow["verdict"], "DROPPED");
    assert_eq!(flow["drop_reason_desc"], "POLICY_DENIED");
    assert_eq!(flow["drop_reason"], 133);
    assert_eq!(flow["traffic_direction"], "EGRESS");
    assert_eq!(flow["Type"], "L3_L4");
    assert_eq!(flow["IP"]["source"], "10.0.1.10");
    assert_eq!(flow["l4"]["UDP"]["destination_port"], 53);
    assert_eq!(flow["destination"]["pod_name"], "node-local-dns-node-1");
    assert_eq!(flow["destination"]["namespace"], "kube-system");
    assert_eq!(flow["source"]["identity"], 256);
    assert_eq!(flow["time"], "2026-11-29T16:00:00.000000000Z");
    let fixed = run("nodelocal-lrp-fixed.yaml");
    let dns = fixed
        .lines
        .iter()
        .find(|l| l.json["flow"]["Type"] == "L7")
        .unwrap();
    assert_eq!(dns.json["flow"]["l7"]["dns"]["query"], "github.com.");
    assert_eq!(dns.json["flow"]["l7"]["dns"]["ips"][0], "140.82.112.3");
    assert_eq!(dns.json["flow"]["l7"]["dns"]["rcode"], 0);
    let connect = fixed
        .lines
        .iter()
        .find(|l| l.json["flow"]["destination_names"][0] == "github.com")
        .unwrap();
    assert_eq!(connect.json["flow"]["verdict"], "FORWARDED");
}

#[test]
fn the_clock_rolls_over_days() {
    let yaml = "apiVersion: fqdnpath/v1\nkind: Scenario\nname: t\ncluster:\n  nodes: [n1]\n  pods: [{name: a, namespace: default, node: n1, ip: 10.0.1.1}]\nsteps:\n  - advance: 48h\n  - connect: {pod: default/a, ip: 192.0.2.1, port: 80}\n    expect: {verdict: FORWARDED}\n";
    let report = Simulation::new(Scenario::from_str("t.yaml", yaml).unwrap())
        .map(|s| s.with_json(true))
        .unwrap()
        .run()
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        report.lines[0].text.starts_with("Dec 01 16:00:00.000"),
        "{}",
        report.lines[0].text
    );
    assert_eq!(
        report.lines[0].json["time"],
        "2026-12-01T16:00:00.000000000Z"
    );
}

#[test]
fn explain_names_the_cache_entries_identity_and_rule() {
    let sim =
        Simulation::new(Scenario::load(&example("nodelocal-lrp-fixed.yaml")).unwrap()).unwrap();
    let lines = sim
        .explain(2, "default/dns-client", "github.com", 443, "TCP")
        .unwrap();
    let text = lines.join("\n");
    assert!(text.contains("github.com. -> 140.82.112.3"), "{text}");
    assert!(
        text.contains("identity 16777217 [fqdn:github.com.,reserved:world]"),
        "{text}"
    );
    assert!(
        text.contains("DNS cache of endpoint 1: github.com. -> 140.82.112.3, ttl 60 s"),
        "{text}"
    );
    assert!(text.contains("verdict: FORWARDED"), "{text}");
    assert!(
        text.contains("from CiliumNetworkPolicy default/dns-client spec.egress[1]"),
        "{text}"
    );
    let sim =
        Simulation::new(Scenario::load(&example("nodelocal-lrp-gotcha.yaml")).unwrap()).unwrap();
    let text = sim
        .explain(0, "default/dns-client", "10.96.0.10", 53, "UDP")
        .unwrap()
        .join("\n");
    assert!(text.contains("translated to 10.0.1.249:53"), "{text}");
    assert!(text.contains("verdict: DROPPED (POLICY_DENIED)"), "{text}");
}

#[test]
fn a_node_local_cache_answers_with_the_remaining_ttl() {
    let mut yaml = std::fs::read_to_string(example("nodelocal-lrp-fixed.yaml")).unwrap();
    let steps = yaml.find("steps:").unwrap();
    yaml.truncate(steps);
    yaml.push_str("steps:\n  - resolve: {pod: default/dns-client, name: github.com}\n  - advance: 20s\n  - resolve: {pod: default/dns-client, name: github.com}\n");
    let mut scenario = Scenario::from_str("ttl.yaml", &yaml).unwrap();
    scenario.base = example("");
    let report = Simulation::new(scenario)
        .unwrap()
        .with_json(true)
        .run()
        .unwrap();
    let ttls: Vec<u64> = report
        .lines
        .iter()
        .filter(|l| l.json["flow"]["Type"] == "L7")
        .map(|l| l.json["flow"]["l7"]["dns"]["ttl"].as_u64().unwrap())
        .collect();
    assert_eq!(ttls, [60, 40]);
}

#[test]
fn scenarios_stop_at_a_year_of_virtual_time() {
    let yaml = "apiVersion: fqdnpath/v1\nkind: Scenario\nname: t\ncluster:\n  nodes: [n1]\nsteps:\n  - advance: 8000h\n  - advance: 900h\n";
    let err = Simulation::new(Scenario::from_str("t.yaml", yaml).unwrap())
        .unwrap()
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("steps[1].advance"), "{err}");
}

#[test]
fn a_scenario_read_as_a_value_is_the_scenario_read_as_yaml() {
    for name in [
        "nodelocal-lrp-gotcha.yaml",
        "nodelocal-lrp-fixed.yaml",
        "apply-restart-zone.yaml",
    ] {
        let text = std::fs::read_to_string(example(name)).unwrap();
        let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            Scenario::from_value(name, value).unwrap(),
            Scenario::from_str(name, &text).unwrap(),
            "{name}"
        );
    }
    let wrong = serde_json::json!({"apiVersion": "fqdnpath/v2", "kind": "Scenario"});
    assert!(matches!(
        Scenario::from_value("v.json", wrong),
        Err(ScenarioError::Invalid { path, .. }) if path == "apiVersion"
    ));
}

#[test]
fn a_scenario_built_twice_loads_its_inline_manifests_once_and_reports_the_same() {
    let scenario = Scenario::load(&example("nodelocal-lrp-fixed.yaml")).unwrap();
    let first = Simulation::new(scenario.clone()).unwrap().run().unwrap();
    // The clone shares the loaded manifests; the result may not depend on it.
    let second = Simulation::new(scenario).unwrap().run().unwrap();
    assert_eq!(first, second);
}

#[test]
fn an_invalid_inline_manifest_is_the_same_error_every_time() {
    let text = "apiVersion: fqdnpath/v1\nkind: Scenario\nname: bad\ncluster: {nodes: [n1]}\nmanifests:\n  - inline: |\n      apiVersion: cilium.io/v2\n      kind: CiliumNetworkPolicy\n      metadata: {name: p}\n      spec: {endpointSelector: {}, egress: [{toFQDNs: [{matchName: 'a b'}]}]}\n";
    let scenario = Scenario::from_str("bad.yaml", text).unwrap();
    let first = Simulation::new(scenario.clone()).err().unwrap().to_string();
    let second = Simulation::new(scenario).err().unwrap().to_string();
    assert_eq!(first, second);
    assert!(first.contains("manifests[0]"), "{first}");
}

/// The regression scenario of a bug the `scenario_structured` fuzz target found (see the
/// file's comment): an agent restart while an answer's map changes are still on their way.
#[test]
fn an_agent_restart_while_an_answer_is_in_flight_leaves_no_stale_entry() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions/restart-while-an-answer-is-in-flight.yaml");
    let report = Simulation::new(Scenario::load(&path).unwrap())
        .unwrap()
        .run()
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.checked, 5);
    let connect = report.lines.last().unwrap();
    assert!(
        connect.text.contains("192.0.2.5:80") && connect.text.ends_with("DROPPED (Policy denied)"),
        "{}",
        connect.text
    );
}
