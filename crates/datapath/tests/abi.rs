//! The Rust ABI types against the C header, compiled by the system C compiler.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use fqdnpath_datapath::abi::layout;

#[test]
fn abi_layout_matches_the_c_header() {
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ebpf/include");
    let mut program = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"fqdnpath_abi.h\"\nint main(void) {\n",
    );
    let rows = layout();
    for (ty, field, _) in &rows {
        if *field == "sizeof" {
            writeln!(program, "printf(\"%zu\\n\", sizeof(struct {ty}));").unwrap();
        } else {
            writeln!(
                program,
                "printf(\"%zu\\n\", offsetof(struct {ty}, {field}));"
            )
            .unwrap();
        }
    }
    program.push_str("return 0;\n}\n");
    let dir = std::env::temp_dir().join(format!("fqdnpath-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("layout.c");
    let binary = dir.join("layout");
    std::fs::write(&source, program).unwrap();
    // The workspace needs a C compiler anyway (criterion's build); its absence is a failure.
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(&include)
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(
        status.success(),
        "the header does not compile (its _Static_asserts included)"
    );
    let output = Command::new(&binary).output().unwrap();
    let printed: Vec<usize> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(printed.len(), rows.len());
    for ((ty, field, rust), c) in rows.iter().zip(printed) {
        assert_eq!(*rust, c, "{ty}.{field}: Rust {rust}, C {c}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn conntrack_keys_round_trip_through_their_images() {
    use fqdnpath_datapath::abi::{CtKey, CtKey4, CtKey6};
    let v4 = CtKey4 {
        saddr: [10, 0, 0, 1],
        daddr: [192, 0, 2, 7],
        sport: 40_000u16.to_be(),
        dport: 443u16.to_be(),
        protocol: 6,
        pad: [0; 3],
    };
    let image = v4.to_bytes();
    assert_eq!(&image[..8], &[10, 0, 0, 1, 192, 0, 2, 7]);
    assert_eq!(CtKey4::from_bytes(&image), v4);
    let v6 = CtKey6 {
        saddr: [0xfd; 16],
        daddr: [0x20; 16],
        sport: 1u16.to_be(),
        dport: 53u16.to_be(),
        protocol: 17,
        pad: [0; 3],
    };
    assert_eq!(CtKey6::from_bytes(&v6.to_bytes()), v6);
    assert_eq!(CtKey::V4(v4).dst().to_string(), "192.0.2.7");
    assert_eq!(CtKey::V6(v6).protocol(), 17);
}
