//! Compiles `ebpf/fqdnpath.bpf.c` with clang (`BPF_CLANG`, else `clang` from `PATH`) into
//! `$OUT_DIR/fqdnpath.bpf.o`, which the crate embeds.
//!
//! Without clang the crate still builds: the `fqdnpath_bpf` cfg stays unset, the backend
//! reports itself unavailable and the kernel tests skip with one line saying why. With
//! `FQDNPATH_REQUIRE_KERNEL=1` (CI, as root) a missing clang is a build error instead, so a
//! skip can never pass for a run. A C error is always a build error.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fqdnpath_bpf)");
    println!("cargo::rerun-if-env-changed=BPF_CLANG");
    println!("cargo::rerun-if-env-changed=FQDNPATH_REQUIRE_KERNEL");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let ebpf = manifest.join("../../ebpf");
    let source = ebpf.join("fqdnpath.bpf.c");
    println!("cargo::rerun-if-changed={}", source.display());
    println!(
        "cargo::rerun-if-changed={}",
        ebpf.join("include/fqdnpath_abi.h").display()
    );
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("fqdnpath.bpf.o");
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    let required = env::var("FQDNPATH_REQUIRE_KERNEL").is_ok_and(|v| v == "1");

    if Command::new(&clang).arg("--version").output().is_err() {
        let why = format!("{clang} not found: the eBPF program was not compiled");
        assert!(
            !required,
            "FQDNPATH_REQUIRE_KERNEL=1 but {why} (install clang and libbpf-dev)"
        );
        println!("cargo::warning=fqdnpath-kernel: {why}; the kernel backend is unavailable");
        println!("cargo::rustc-env=FQDNPATH_BPF_MISSING={why}");
        return;
    }
    // `asm/types.h` lives in the multiarch include directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let output = Command::new(&clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("clang ran a moment ago");
    assert!(
        output.status.success(),
        "clang failed to compile {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("cargo::rustc-cfg=fqdnpath_bpf");
}
