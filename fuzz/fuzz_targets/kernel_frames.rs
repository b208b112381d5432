//! The kernel's parser and verdicts against the model's, on arbitrary frames (root only; as
//! another user the target returns at once and says so once).
//!
//! The first input byte picks a direction and a template (IPv4 or IPv6, TCP, UDP, ICMP, an
//! IPv6 extension header, or none) and the second where the template is cut; the rest of the
//! input follows the cut, so mutations land in every header. The frame is judged by the eBPF
//! program through `BPF_PROG_TEST_RUN` and by the reference datapath, both programmed the
//! same way: the flow events must be equal. A frame the kernel's test harness refuses (an IP
//! frame shorter than its fixed IP header) must be one the model drops.
#![no_main]

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Once;

use fqdnpath_cache::Timestamp;
use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::frame::build_frame;
use fqdnpath_datapath::{Datapath, MapSizes, Packet, ReferenceDatapath, Verdict};
use fqdnpath_kernel::{Clock, KernelDatapath};
use fqdnpath_policy::compile::{Delta, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DnsAllow, PolicyAction, PolicyKey};
use libfuzzer_sys::fuzz_target;

struct Pair {
    kernel: KernelDatapath,
    model: ReferenceDatapath,
    runs: u64,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn setup() -> Option<Pair> {
    if let Some(why) = fqdnpath_kernel::unavailable() {
        static SAID: Once = Once::new();
        SAID.call_once(|| eprintln!("kernel_frames: nothing to do: {why}"));
        return None;
    }
    let mut kernel = KernelDatapath::load(MapSizes::default(), Clock::Virtual).unwrap();
    let mut model = ReferenceDatapath::default();
    let key = |identity: u32, proto: u8, port: u16, len: u8| PolicyKey {
        identity: Identity(identity),
        proto,
        port,
        port_prefix_len: len,
    };
    let deltas = [
        Delta::IpcacheUpsert {
            prefix: Prefix::host(ip("192.0.2.7")),
            identity: Identity(256),
        },
        Delta::IpcacheUpsert {
            prefix: Prefix {
                addr: ip("2001:db8::"),
                len: 32,
            },
            identity: Identity(257),
        },
        Delta::PolicyUpsert {
            endpoint: EndpointId(1),
            key: key(256, 6, 443, 16),
            action: PolicyAction::Allow,
        },
        Delta::PolicyUpsert {
            endpoint: EndpointId(1),
            key: key(257, 0, 0, 0),
            action: PolicyAction::Allow,
        },
        Delta::PolicyUpsert {
            endpoint: EndpointId(1),
            key: key(0, 17, 53, 16),
            action: PolicyAction::RedirectDns(DnsAllow::All),
        },
        Delta::PolicyUpsert {
            endpoint: EndpointId(1),
            key: key(2, 6, 8000, 14),
            action: PolicyAction::Deny,
        },
        Delta::PolicyUpsert {
            endpoint: EndpointId(1),
            key: key(0, 1, 0, 0),
            action: PolicyAction::Allow,
        },
    ];
    for dp in [&mut kernel as &mut dyn Datapath, &mut model] {
        for addr in ["10.0.0.1", "fd00::1"] {
            dp.set_endpoint(EndpointId(1), ip(addr), Identity(16_777_217)).unwrap();
        }
        dp.apply(&deltas).unwrap();
    }
    Some(Pair {
        kernel,
        model,
        runs: 0,
    })
}

thread_local! {
    static PAIR: RefCell<Option<Pair>> = RefCell::new(setup());
}

fn template(which: u8) -> Vec<u8> {
    let packet = |src: &str, dst: &str, proto: u8, dport: u16| Packet {
        src: ip(src),
        dst: ip(dst),
        proto,
        sport: 40_000,
        dport,
        flags: TcpFlags::default(),
    };
    match which % 6 {
        0 => build_frame(&packet("10.0.0.1", "192.0.2.7", 6, 443), 4),
        1 => build_frame(&packet("10.0.0.1", "192.0.2.9", 17, 53), 4),
        2 => build_frame(&packet("fd00::1", "2001:db8::5", 6, 8001), 4),
        3 => build_frame(&packet("10.0.0.1", "8.8.8.8", 1, 0), 4),
        4 => {
            // IPv6 with one hop-by-hop header before UDP.
            let f = build_frame(&packet("fd00::1", "2001:db8::5", 17, 53), 4);
            let mut out = f[..54].to_vec();
            out[20] = 0;
            out.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&f[54..]);
            out
        }
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut frame = template(data[0] >> 1);
    frame.truncate(usize::from(data[1]));
    frame.extend_from_slice(&data[2..]);
    frame.truncate(1500);
    let egress = data[0] & 1 == 0;
    PAIR.with(|pair| {
        let mut pair = pair.borrow_mut();
        let Some(Pair {
            kernel,
            model,
            runs,
        }) = pair.as_mut()
        else {
            return;
        };
        // Conntrack fills with the inputs' flows; empty it now and then, far ahead of the
        // frames' clock, before the kernel's LRU would evict where the model refuses.
        *runs += 1;
        if *runs % 4096 == 0 {
            let later = Timestamp::from_secs(1_000_000);
            assert_eq!(kernel.conntrack_gc(later), model.conntrack_gc(later));
        }
        let now = Timestamp::from_secs(1);
        let want = if egress {
            model.egress_frame(&frame, now)
        } else {
            model.ingress_frame(&frame, now)
        };
        let program = if egress {
            KernelDatapath::EGRESS
        } else {
            KernelDatapath::INGRESS
        };
        match kernel.test_run(program, &frame, now) {
            Ok((dropped, event)) => {
                let got = event.map(|e| kernel.flow_event(&e));
                assert_eq!(got, want, "frame {frame:02x?}");
                assert_eq!(dropped, want.is_some_and(|e| e.verdict == Verdict::Dropped));
            }
            // The harness refuses the frame; the model must not let it through.
            Err(_) => assert!(
                want.as_ref().is_some_and(|e| e.verdict == Verdict::Dropped),
                "the kernel refused {frame:02x?} but the model says {want:?}"
            ),
        }
    });
});
