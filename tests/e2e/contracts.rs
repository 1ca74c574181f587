//! The committed contract artifacts are what the pinned solc makes of the committed sources.

use std::process::Command;

#[test]
fn committed_artifacts_match_a_fresh_compile() {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new(root)
            .join("node_modules/solc")
            .exists(),
        "solc is not installed: run `npm ci` in the repository root"
    );
    let out = Command::new("node")
        .arg("fixtures/contracts/compile.js")
        .arg("--check")
        .current_dir(root)
        .output()
        .expect("node runs (install Node.js 20+)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 artifacts match"));
}
