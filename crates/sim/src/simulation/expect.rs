//! Expectations: what a step observed, checked against its `expect` block.

use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_datapath::{FlowEvent, Verdict};
use fqdnpath_policy::policymap::MatchType;

use super::Simulation;
use crate::scenario::Expect;

/// An expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The step's index.
    pub step: usize,
    /// What was expected and what happened.
    pub message: String,
}

/// What happened at a step, for its expectations.
#[derive(Clone, Debug, Default)]
pub(super) struct Observed {
    pub(super) rcode: Option<String>,
    pub(super) ips: Option<Vec<IpAddr>>,
    pub(super) verdict: Option<Verdict>,
    pub(super) drop_reason: Option<String>,
    pub(super) held: Option<Duration>,
    pub(super) identity: Option<u32>,
    pub(super) match_type: Option<MatchType>,
}

impl Observed {
    /// What a packet's flow event shows.
    pub(super) fn of(event: &FlowEvent) -> Self {
        Self {
            verdict: Some(event.verdict),
            drop_reason: event.drop_reason.map(|r| r.desc().to_owned()),
            identity: Some(event.dst_identity.0),
            match_type: event.match_type,
            ..Self::default()
        }
    }
}

impl Simulation {
    /// Checks step `step`'s expectations; counts them and records those that fail.
    pub(super) fn check(&mut self, step: usize, expect: &Expect, observed: &Observed) {
        let mut fail = |what: &str, want: String, got: String| {
            self.report.failures.push(Failure {
                step,
                message: format!("steps[{step}]: expected {what} {want}, got {got}"),
            });
        };
        let mut checked = 0;
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
        if let Some(want) = &expect.rcode {
            checked += 1;
            if observed.rcode.as_deref() != Some(want.as_str()) {
                fail("rcode", want.clone(), show(&observed.rcode));
            }
        }
        if let Some(want) = &expect.ips {
            checked += 1;
            let mut w = want.clone();
            w.sort();
            let mut g = observed.ips.clone().unwrap_or_default();
            g.sort();
            if w != g {
                fail("ips", format!("{w:?}"), format!("{g:?}"));
            }
        }
        if let Some(want) = &expect.verdict {
            checked += 1;
            let got = observed.verdict.map(|v| v.name().to_owned());
            if got.as_deref() != Some(want.as_str()) {
                fail("verdict", want.clone(), show(&got));
            }
        }
        if let Some(want) = &expect.drop_reason {
            checked += 1;
            if observed.drop_reason.as_deref() != Some(want.as_str()) {
                fail("drop_reason", want.clone(), show(&observed.drop_reason));
            }
        }
        if let Some(want) = &expect.held {
            checked += 1;
            if observed.held != Some(want.0) {
                fail(
                    "held",
                    format!("{:?}", want.0),
                    format!("{:?}", observed.held),
                );
            }
        }
        if let Some(want) = expect.identity {
            checked += 1;
            if observed.identity != Some(want) {
                fail(
                    "identity",
                    want.to_string(),
                    format!("{:?}", observed.identity),
                );
            }
        }
        if let Some(want) = &expect.policy_match_type {
            checked += 1;
            let got = observed.match_type.map(|m| m.name().to_owned());
            if got.as_deref() != Some(want.as_str()) {
                fail("policy_match_type", want.clone(), show(&got));
            }
        }
        self.report.checked += checked;
    }
}
