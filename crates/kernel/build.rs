//! Compiles the eBPF C with clang (`BPF_CLANG`, else `clang` from `PATH`) into two objects
//! the crate embeds: `ebpf/fqdnpath.bpf.c` into `$OUT_DIR/fqdnpath.bpf.o` (the datapath) and
//! `ebpf/bench.bpf.c` into `$OUT_DIR/bench.bpf.o` (the bench's baseline, embedded only with the
//! `test-support` feature). Both include the headers of `ebpf/lib/` and `ebpf/include/`.
//!
//! Without clang the crate still builds: the `fqdnpath_bpf` cfg stays unset, the backend
//! reports itself unavailable and the kernel tests skip with one line saying why. With
//! `FQDNPATH_REQUIRE_KERNEL=1` (CI, as root) a missing clang is a build error instead, so a
//! skip can never pass for a run. A C error is always a build error.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sources, each compiled into the object of the same stem.
const SOURCES: [&str; 2] = ["fqdnpath.bpf.c", "bench.bpf.c"];
/// The header directories the sources include from.
const HEADER_DIRS: [&str; 2] = ["include", "lib"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fqdnpath_bpf)");
    println!("cargo::rerun-if-env-changed=BPF_CLANG");
    println!("cargo::rerun-if-env-changed=FQDNPATH_REQUIRE_KERNEL");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let ebpf = manifest.join("../../ebpf");
    for source in SOURCES {
        println!("cargo::rerun-if-changed={}", ebpf.join(source).display());
    }
    for dir in HEADER_DIRS {
        let dir = ebpf.join(dir);
        // The directory itself: a header added or removed.
        println!("cargo::rerun-if-changed={}", dir.display());
        for header in headers(&dir) {
            println!("cargo::rerun-if-changed={}", header.display());
        }
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    let required = env::var("FQDNPATH_REQUIRE_KERNEL").is_ok_and(|v| v == "1");

    if Command::new(&clang).arg("--version").output().is_err() {
        let why = format!("{clang} not found: the eBPF program was not compiled");
        assert!(
            !required,
            "FQDNPATH_REQUIRE_KERNEL=1 but {why} (install clang and libbpf-dev)"
        );
        println!("cargo::warning=fqdnpath-kernel: {why}; the kernel backend is unavailable");
        println!("cargo::rustc-env=FQDNPATH_BPF_CLANG={clang}");
        return;
    }
    for source in SOURCES {
        let object = source.strip_suffix(".c").expect("a C source").to_owned() + ".o";
        compile(&clang, &ebpf.join(source), &out_dir.join(object));
    }
    println!("cargo::rustc-cfg=fqdnpath_bpf");
}

/// The `.h` files in `dir`, sorted (none if it cannot be read: clang then says what is missing).
fn headers(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "h"))
        .collect();
    found.sort();
    found
}

/// Compiles `source` into `object`; a C error fails the build with clang's output.
fn compile(clang: &str, source: &Path, object: &Path) {
    // `asm/types.h` lives in the multiarch include directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let output = Command::new(clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(object)
        .output()
        .expect("clang ran a moment ago");
    assert!(
        output.status.success(),
        "clang failed to compile {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
