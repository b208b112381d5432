//! Expectations: what a step observed, checked against its `expect` block.

use std::fmt::Display;
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

/// Counts a step's expectations and records those that do not hold.
struct Checker<'a> {
    step: usize,
    checked: usize,
    failures: &'a mut Vec<Failure>,
}

impl Checker<'_> {
    /// Records that `what` was expected to be `want` and was `got`.
    fn fail(&mut self, what: &str, want: impl Display, got: impl Display) {
        let step = self.step;
        self.failures.push(Failure {
            step,
            message: format!("steps[{step}]: expected {what} {want}, got {got}"),
        });
    }

    /// Checks an expectation written as a name (`NOERROR`, `DROPPED`, ...), if it is set:
    /// `got` is the name observed, if any (shown as `none`).
    fn name(&mut self, what: &str, want: Option<&String>, got: Option<&str>) {
        if let Some(want) = want {
            self.checked += 1;
            if got != Some(want.as_str()) {
                self.fail(what, want, got.unwrap_or("none"));
            }
        }
    }
}

impl Simulation {
    /// Checks step `step`'s expectations; counts them and records those that fail.
    pub(super) fn check(&mut self, step: usize, expect: &Expect, observed: &Observed) {
        let mut c = Checker {
            step,
            checked: 0,
            failures: &mut self.report.failures,
        };
        c.name("rcode", expect.rcode.as_ref(), observed.rcode.as_deref());
        if let Some(want) = &expect.ips {
            c.checked += 1;
            let mut w = want.clone();
            w.sort();
            let mut g = observed.ips.clone().unwrap_or_default();
            g.sort();
            if w != g {
                c.fail("ips", format!("{w:?}"), format!("{g:?}"));
            }
        }
        c.name(
            "verdict",
            expect.verdict.as_ref(),
            observed.verdict.map(Verdict::name),
        );
        c.name(
            "drop_reason",
            expect.drop_reason.as_ref(),
            observed.drop_reason.as_deref(),
        );
        if let Some(want) = &expect.held {
            c.checked += 1;
            if observed.held != Some(want.0) {
                c.fail(
                    "held",
                    format!("{:?}", want.0),
                    format!("{:?}", observed.held),
                );
            }
        }
        if let Some(want) = expect.identity {
            c.checked += 1;
            if observed.identity != Some(want) {
                c.fail("identity", want, format!("{:?}", observed.identity));
            }
        }
        c.name(
            "policy_match_type",
            expect.policy_match_type.as_ref(),
            observed.match_type.map(MatchType::name),
        );
        self.report.checked += c.checked;
    }
}
