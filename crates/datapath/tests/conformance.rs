//! The conformance suite (`fqdnpath_datapath::conformance`) against the reference model. The
//! kernel backend runs the same suite in `fqdnpath-kernel`'s tests.

use fqdnpath_datapath::conformance::Factory;
use fqdnpath_datapath::{Datapath, ReferenceDatapath};

#[expect(
    clippy::unnecessary_wraps,
    reason = "the suite's factory type: other backends skip cases"
)]
fn model(_case: &str) -> Option<Box<Factory<'static>>> {
    Some(Box::new(|sizes| {
        Box::new(ReferenceDatapath::new(sizes)) as Box<dyn Datapath>
    }))
}

fqdnpath_datapath::conformance_suite!(model);
