//! Feeds real DNS wire responses through observation and the FQDN cache, on a virtual clock,
//! and prints what was learned, until when, and what the DNS GC and the connection-tracking GC
//! do with it (expiry, zombies, a live connection keeping its IP, restore after a restart).
//!
//! Run: `cargo run --example observe`

use std::net::IpAddr;

use fqdnpath::cache::hickory_proto::op::ResponseCode;
use fqdnpath::cache::hickory_proto::rr::RecordType;
use fqdnpath::cache::wire::ResponseBuilder;
use fqdnpath::cache::{
    EndpointCaches, EndpointId, Fqdn, FqdnConfig, Observation, Snapshot, Timestamp, observe,
};
use fqdnpath::names::{FqdnSelector, SelectorSet};

const CLIENT: EndpointId = EndpointId(1234);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal IP")
}

fn show(observation: &Observation) -> String {
    let ips: Vec<String> = observation
        .addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    let ttl = if observation.ttl == u32::MAX {
        "-".to_owned()
    } else {
        observation.ttl.to_string()
    };
    format!(
        "{} {} rcode={} ips=[{}] ttl={ttl} cnames=[{}]",
        observation.qname,
        observation.qtype,
        observation.rcode_name(),
        ips.join(","),
        observation.cnames.join(",")
    )
}

fn print_state(caches: &EndpointCaches, now: Timestamp) {
    let Some(dns) = caches.endpoint(CLIENT) else {
        return;
    };
    for record in dns.cache.records() {
        let state = if record.entry.is_valid_at(now) {
            "valid"
        } else {
            "expired, until GC"
        };
        println!(
            "    cache  {:<22} {:<15} ttl={:<4} expires {} ({state})",
            record.name.as_str(),
            record.ip.to_string(),
            record.entry.ttl,
            record.entry.expiry,
        );
    }
    for zombie in dns.zombies.iter() {
        let names: Vec<&str> = zombie.names.iter().map(Fqdn::as_str).collect();
        println!(
            "    zombie {:<22} {:<15} pending since {}",
            names.join(","),
            zombie.ip.to_string(),
            zombie.delete_pending_at
        );
    }
}

/// The responses the pod receives: (seconds, what, wire bytes).
fn responses() -> Vec<(u64, &'static str, Vec<u8>)> {
    let github = ResponseBuilder::new(0x1001, "github.com", RecordType::A)
        .address("github.com", ip("140.82.112.3"), 60)
        .edns(1232);
    let www = ResponseBuilder::new(0x1002, "www.GitHub.com", RecordType::A)
        .cname("www.GitHub.com", "github.com", 300)
        .address("github.com", ip("140.82.112.4"), 30);
    let api = ResponseBuilder::new(0x1003, "api.example.com", RecordType::AAAA).address(
        "api.example.com",
        ip("2001:db8::10"),
        600,
    );
    let nope = ResponseBuilder::new(0x1004, "nope.example.com", RecordType::A)
        .rcode(ResponseCode::NXDomain);
    [
        (0, "github.com A", github),
        (5, "www.GitHub.com A, through a CNAME", www),
        (10, "api.example.com AAAA", api),
        (12, "nope.example.com A, NXDOMAIN", nope),
    ]
    .into_iter()
    .map(|(secs, what, response)| (secs, what, response.to_wire().expect("a valid response")))
    .collect()
}

fn main() {
    let responses = responses();
    let selectors: SelectorSet = ["github.com", "*.github.com"]
        .iter()
        .map(|s| {
            if s.contains('*') {
                FqdnSelector::match_pattern(s)
            } else {
                FqdnSelector::match_name(s)
            }
        })
        .collect::<Result<_, _>>()
        .expect("valid selectors");

    let mut caches = EndpointCaches::new(FqdnConfig::default());
    println!("endpoint {CLIENT}: DNS responses observed by the proxy");
    for (secs, what, wire) in &responses {
        let now = Timestamp::from_secs(*secs);
        match observe(wire) {
            Ok(observation) => {
                let outcome = caches.observe(CLIENT, now, &observation);
                let selected: Vec<String> = selectors
                    .matches(observation.qname.as_str())
                    .into_iter()
                    .filter_map(|id| selectors.get(id).map(ToString::to_string))
                    .collect();
                println!("  {now} {what} ({} bytes)", wire.len());
                println!("    observed {}", show(&observation));
                println!(
                    "    learned {} new pair(s); selected by [{}]",
                    outcome.added.len(),
                    selected.join("; ")
                );
            }
            Err(error) => println!("  {now} {what}: rejected: {error}"),
        }
    }
    let truncated = &responses[0].2[..20];
    match observe(truncated) {
        Ok(_) => println!("  a truncated response was accepted (unexpected)"),
        Err(error) => println!(
            "  {} a truncated response: rejected: {error}",
            Timestamp::from_secs(12)
        ),
    }

    let now = Timestamp::from_secs(20);
    println!("\n{now} cache of endpoint {CLIENT}:");
    print_state(&caches, now);

    // The pod connects to 140.82.112.4 and keeps the connection open; nothing uses
    // 140.82.112.3 once it is resolved. Every minute the connection-tracking GC runs, then the
    // DNS GC (Cilium runs both on their own schedules; the order is fixed here).
    let conntrack_live = [(CLIENT, ip("140.82.112.4"))];

    for secs in [60, 120, 180, 240] {
        let now = Timestamp::from_secs(secs);
        caches.ct_gc(now, conntrack_live);
        let gc = caches.gc(now);
        let report = &gc[&CLIENT];
        println!(
            "\n{now} CT GC (live: 140.82.112.4), then DNS GC: {} pair(s) left the cache, {} zombie(s) alive, {} dead",
            report.cache.removed.len(),
            report.zombies.alive.len(),
            report.zombies.dead.len()
        );
        print_state(&caches, now);
        for name in ["github.com.", "www.github.com."] {
            let held: Vec<String> = caches
                .global_ips(name)
                .iter()
                .map(ToString::to_string)
                .collect();
            println!("    {name} keeps its identity on [{}]", held.join(", "));
        }
    }

    let json = Snapshot::of(&caches).to_json();
    let restored = Snapshot::from_json(&json)
        .and_then(|s| s.restore(*caches.config()))
        .expect("a snapshot restores");
    println!(
        "\nsnapshot: {} bytes of JSON; restored state identical: {}",
        json.len(),
        restored == caches
    );
}
