//! The simulator's Hubble output reads back: for the example scenarios and for random ones,
//! every JSON line `fqdnpath run --output json` prints reads with `fqdnpath-hubble` into the
//! line's own [`GetFlowsResponse`] and writes back to the same bytes; each text line is that
//! flow's compact form; and the JSON keeps the shape it has always had (the keys, their order,
//! the kinds of values), which scripts reading `--output json` rely on.
//!
//! The random scenarios are the two-phase cases of `two_phase.rs` (`common/mod.rs`), and
//! random steps (resolve A or AAAA, connect to any address, advance, restart an agent) over the
//! clusters, manifests and zones of the example scenarios, the regression scenarios and the
//! Hubble crate's IPv6 fixture.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use fqdnpath_hubble::{GetFlowsResponse, compact};
use fqdnpath_sim::{Report, Scenario, Simulation};
use proptest::prelude::*;
use serde_json::Value;

/// The scenarios of the repository: the examples, the regressions and the Hubble crate's
/// IPv6 fixture.
fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<PathBuf> = [
        "examples/scenarios",
        "crates/sim/tests/regressions",
        "crates/hubble/tests/data/sim",
    ]
    .iter()
    .flat_map(|dir| fs::read_dir(root.join(dir)).unwrap())
    .map(|e| e.unwrap().path())
    .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    .collect();
    files.sort();
    assert!(files.len() >= 9, "the scenarios were found: {files:?}");
    files
}

/// Runs `load`'s scenario with and without JSON, checks every line of both (see [`check`]),
/// and returns the number of lines.
fn run_and_check(load: impl Fn() -> Scenario, shown: &str) -> Result<usize, TestCaseError> {
    let run = |json: bool| {
        Simulation::new(load())
            .and_then(|s| s.with_json(json).run())
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- scenario ---\n{shown}")))
    };
    let with_json = run(true)?;
    let plain = run(false)?;
    check(&with_json, &plain)
        .map_err(|e| TestCaseError::fail(format!("{e}\n--- scenario ---\n{shown}")))?;
    Ok(with_json.lines.len())
}

/// The lines of a run with JSON and of the same run without: the same flows and texts; each
/// JSON line reads back into its flow and writes back the same bytes, in today's shape; each
/// text is the flow's compact form.
fn check(with_json: &Report, plain: &Report) -> Result<(), String> {
    if with_json.lines.len() != plain.lines.len() {
        return Err(format!(
            "{} lines with JSON, {} without",
            with_json.lines.len(),
            plain.lines.len()
        ));
    }
    for (i, (line, bare)) in with_json.lines.iter().zip(&plain.lines).enumerate() {
        let at = |what: String| format!("line {}: {what}\n{}\n{}", i + 1, line.text, line.json);
        if (&bare.flow, &bare.text, bare.time) != (&line.flow, &line.text, line.time) {
            return Err(at("not the same line without JSON".into()));
        }
        if !bare.json.is_null() {
            return Err(at("JSON without being asked for".into()));
        }
        let Some(flow) = &line.flow.flow else {
            return Err(at("no flow".into()));
        };
        if compact(flow).to_string() != line.text {
            return Err(at(format!("the compact form is {}", compact(flow))));
        }
        let printed = line.json.to_string();
        let read = GetFlowsResponse::from_json_line(&printed).map_err(|e| at(e.to_string()))?;
        if read != line.flow {
            return Err(at(format!("reads back as {read:?}")));
        }
        let written = serde_json::to_value(&read)
            .and_then(|v| serde_json::to_string(&v))
            .map_err(|e| at(e.to_string()))?;
        if written != printed {
            return Err(at(format!("writes back as {written}")));
        }
        shape(&line.json).map_err(at)?;
    }
    Ok(())
}

/// Fails with `what` unless `ok`.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The object's keys, checked to be in order (`serde_json::Value` sorts them by name: the
/// order the simulator has always printed).
fn keys(v: &Value) -> Result<Vec<&str>, String> {
    let object = v.as_object().ok_or_else(|| format!("not an object: {v}"))?;
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    ensure(keys.is_sorted(), || format!("keys out of order: {keys:?}"))?;
    Ok(keys)
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("not a string: {v}"))
}

fn number(v: &Value) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("not a number: {v}"))
}

fn strings(v: &Value) -> Result<(), String> {
    let items = v.as_array().ok_or_else(|| format!("not a list: {v}"))?;
    items.iter().try_for_each(|s| string(s).map(drop))
}

/// A time as the simulator writes it: RFC 3339 in UTC with nine fractional digits.
fn time(v: &Value) -> Result<(), String> {
    let t = string(v)?;
    ensure(
        t.len() == 30 && t.as_bytes()[19] == b'.' && t.ends_with('Z'),
        || format!("not a time with nanoseconds: {t}"),
    )?;
    fqdnpath_hubble::Time::parse(t)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// One end of a flow: a pod (`ID`, `identity`, `labels`, `namespace`, `pod_name`) or an
/// identity alone (`identity`, `labels`).
fn end(v: &Value) -> Result<(), String> {
    match keys(v)?.as_slice() {
        ["ID", "identity", "labels", "namespace", "pod_name"] => {
            number(&v["ID"])?;
            string(&v["namespace"])?;
            string(&v["pod_name"])?;
        }
        ["identity", "labels"] => {}
        other => return Err(format!("an end with keys {other:?}")),
    }
    number(&v["identity"])?;
    strings(&v["labels"])
}

/// The JSON of a line, as the simulator has always written it: `{"flow", "node_name",
/// "time"}`, the flow an L3/L4 policy verdict (or drop) or an L7 DNS response.
fn shape(line: &Value) -> Result<(), String> {
    ensure(keys(line)? == ["flow", "node_name", "time"], || {
        "the line's keys".into()
    })?;
    let flow = &line["flow"];
    ensure(line["node_name"] == flow["node_name"], || {
        "node_name".into()
    })?;
    ensure(line["time"] == flow["time"], || "time".into())?;
    time(&flow["time"])?;
    string(&flow["node_name"])?;
    ensure(flow["traffic_direction"] == "EGRESS", || "direction".into())?;
    let verdict = string(&flow["verdict"])?;
    let event_type = number(&flow["event_type"]["type"])?;
    ensure(keys(&flow["event_type"])? == ["type"], || {
        "event_type".into()
    })?;
    ensure(flow["is_reply"].is_boolean(), || "is_reply".into())?;
    match string(&flow["Type"])? {
        "L7" => dns_response(flow, verdict, event_type),
        "L3_L4" => policy_verdict(flow, verdict, event_type),
        other => Err(format!("a flow of type {other}")),
    }
}

/// An L7 flow: a DNS response to a pod.
fn dns_response(flow: &Value, verdict: &str, event_type: u64) -> Result<(), String> {
    ensure(
        keys(flow)?
            == [
                "Type",
                "destination",
                "event_type",
                "is_reply",
                "l7",
                "node_name",
                "time",
                "traffic_direction",
                "verdict",
            ],
        || "an L7 flow's keys".into(),
    )?;
    ensure(verdict == "FORWARDED" && event_type == 129, || {
        "a DNS response's verdict".into()
    })?;
    ensure(flow["is_reply"] == true, || "a response is a reply".into())?;
    end(&flow["destination"])?;
    let l7 = &flow["l7"];
    ensure(
        keys(l7)? == ["dns", "type"] && l7["type"] == "RESPONSE",
        || "l7".into(),
    )?;
    let dns = &l7["dns"];
    ensure(
        keys(dns)? == ["cnames", "ips", "qtypes", "query", "rcode", "ttl"],
        || "dns".into(),
    )?;
    strings(&dns["cnames"])?;
    strings(&dns["ips"])?;
    strings(&dns["qtypes"])?;
    string(&dns["query"])?;
    number(&dns["rcode"])?;
    number(&dns["ttl"]).map(drop)
}

/// An L3/L4 flow: a policy verdict, or a drop.
fn policy_verdict(flow: &Value, verdict: &str, event_type: u64) -> Result<(), String> {
    let dropped = verdict == "DROPPED";
    let mut want = vec![
        "IP",
        "Type",
        "destination",
        "destination_names",
        "event_type",
        "is_reply",
        "l4",
        "node_name",
        "policy_match_type",
        "source",
        "time",
        "traffic_direction",
        "verdict",
    ];
    if flow.get("drop_reason").is_some() {
        ensure(dropped, || "a drop reason on a flow not dropped".into())?;
        want.extend(["drop_reason", "drop_reason_desc"]);
        want.sort_unstable();
        number(&flow["drop_reason"])?;
        string(&flow["drop_reason_desc"])?;
    }
    ensure(keys(flow)? == want, || "an L3/L4 flow's keys".into())?;
    ensure(
        ["FORWARDED", "REDIRECTED", "DROPPED"].contains(&verdict)
            && event_type == if dropped { 1 } else { 5 },
        || "the verdict and its event type".into(),
    )?;
    let ip = &flow["IP"];
    ensure(keys(ip)? == ["destination", "ipVersion", "source"], || {
        "IP".into()
    })?;
    let source: IpAddr = string(&ip["source"])?
        .parse()
        .map_err(|e| format!("IP.source: {e}"))?;
    string(&ip["destination"])?
        .parse::<IpAddr>()
        .map_err(|e| format!("IP.destination: {e}"))?;
    let version = if source.is_ipv4() { "IPv4" } else { "IPv6" };
    ensure(ip["ipVersion"] == version, || "ipVersion".into())?;
    let l4 = &flow["l4"];
    let proto = match keys(l4)?.as_slice() {
        [p @ ("TCP" | "UDP")] => *p,
        other => return Err(format!("l4 with keys {other:?}")),
    };
    ensure(
        keys(&l4[proto])? == ["destination_port", "source_port"],
        || "the ports".into(),
    )?;
    number(&l4[proto]["destination_port"])?;
    number(&l4[proto]["source_port"])?;
    end(&flow["source"])?;
    end(&flow["destination"])?;
    strings(&flow["destination_names"])?;
    ensure(number(&flow["policy_match_type"])? <= 6, || {
        "policy_match_type".into()
    })
}

#[test]
fn every_line_of_the_example_scenarios_reads_back_as_its_flow() {
    let mut lines = 0;
    for path in scenario_files() {
        let shown = path.display().to_string();
        lines += run_and_check(|| Scenario::load(&path).unwrap(), &shown)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(lines >= 50, "only {lines} lines");
}

/// A scenario file whose cluster, manifests and zone random steps run over.
#[derive(Clone, Debug)]
struct Base {
    /// The file.
    path: PathBuf,
    /// Its text up to its `steps:`, which come last.
    head: String,
    /// `namespace/name` of each pod that is not a DNS server.
    clients: Vec<String>,
    /// The zone's names, and one it does not have.
    names: Vec<String>,
    /// Addresses to connect to: the zone's, the pods', the services' and one of nobody.
    ips: Vec<IpAddr>,
    /// The nodes.
    nodes: Vec<String>,
}

/// Every scenario file as a base, read once.
static BASES: LazyLock<Vec<Base>> = LazyLock::new(bases);

fn bases() -> Vec<Base> {
    scenario_files()
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let head = text.find("\nsteps:").expect("steps come last") + 1;
            let scenario = Scenario::load(&path).unwrap();
            let cluster = &scenario.cluster;
            let mut names: Vec<String> = scenario.zone.iter().map(|r| r.name.clone()).collect();
            names.push("missing.example.com".into());
            names.dedup();
            let ips = scenario
                .zone
                .iter()
                .filter_map(|r| r.value.as_deref()?.parse().ok())
                .chain(cluster.pods.iter().map(|p| p.ip))
                .chain(cluster.services.iter().map(|s| s.cluster_ip))
                .chain(["192.0.2.200".parse().unwrap()])
                .collect();
            Base {
                head: text[..head].to_owned(),
                clients: cluster
                    .pods
                    .iter()
                    .filter(|p| p.dns.is_none())
                    .map(|p| format!("{}/{}", p.namespace, p.name))
                    .collect(),
                names,
                ips,
                nodes: cluster.nodes.clone(),
                path,
            }
        })
        .collect()
}

/// One random step; its indices pick modulo the lists of the base.
#[derive(Clone, Debug)]
enum Step {
    Resolve {
        pod: usize,
        name: usize,
        aaaa: bool,
    },
    Connect {
        pod: usize,
        ip: usize,
        port: u16,
        udp: bool,
    },
    Advance(u64),
    Restart(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(pod, name, aaaa)| Step::Resolve { pod, name, aaaa }),
        4 => (
            any::<usize>(),
            any::<usize>(),
            prop::sample::select(&[443u16, 80, 53][..]),
            prop::bool::weighted(0.3),
        )
            .prop_map(|(pod, ip, port, udp)| Step::Connect { pod, ip, port, udp }),
        2 => prop::sample::select(&[1u64, 30, 70, 400][..]).prop_map(Step::Advance),
        1 => any::<usize>().prop_map(Step::Restart),
    ]
}

/// The base's scenario with `steps` instead of its own, as a scenario file's text.
fn with_steps(base: &Base, steps: &[Step]) -> String {
    let mut y = base.head.clone();
    y.push_str("steps:\n");
    let pick = |list: &[String], i: usize| list[i % list.len()].clone();
    for step in steps {
        let _ = match *step {
            Step::Resolve { pod, name, aaaa } => writeln!(
                y,
                "  - resolve: {{pod: {}, name: {}, type: {}}}",
                pick(&base.clients, pod),
                pick(&base.names, name),
                if aaaa { "AAAA" } else { "A" }
            ),
            Step::Connect { pod, ip, port, udp } => writeln!(
                y,
                "  - connect: {{pod: {}, ip: \"{}\", port: {port}, protocol: {}}}",
                pick(&base.clients, pod),
                base.ips[ip % base.ips.len()],
                if udp { "UDP" } else { "TCP" }
            ),
            Step::Advance(s) => writeln!(y, "  - advance: {s}s"),
            Step::Restart(node) => {
                writeln!(
                    y,
                    "  - restart-agent: {{node: {}}}",
                    pick(&base.nodes, node)
                )
            }
        };
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_line_of_a_two_phase_case_reads_back_as_its_flow(case in common::case()) {
        let yaml = common::scenario(&case);
        run_and_check(|| Scenario::from_str("two-phase.yaml", &yaml).unwrap(), &yaml)?;
    }

    #[test]
    fn every_line_of_random_steps_over_the_examples_reads_back_as_its_flow(
        base in 0..BASES.len(),
        steps in prop::collection::vec(step(), 1..20),
    ) {
        let base = &BASES[base];
        let yaml = with_steps(base, &steps);
        let load = || {
            let mut scenario = Scenario::from_str(&base.path.display().to_string(), &yaml)
                .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            scenario.base = base.path.parent().unwrap().to_owned();
            scenario
        };
        run_and_check(load, &yaml)?;
    }
}
