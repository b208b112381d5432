//! Manifest loading from arbitrary text: a typed error or warnings, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(loaded) = fqdnpath_policy::load_str("fuzz.yaml", text)
    {
        // Whatever loads also compiles (no endpoints: the policies alone).
        let policies = loaded.network_policies();
        let _ = fqdnpath_policy::compile::Compiler::new(&policies, &[]);
    }
});
