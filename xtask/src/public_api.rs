//! The public API, snapshotted: `docs/public-api.txt` is what `cargo public-api -s` prints for
//! linux-aio on x86_64 with default features (every public item, its signature, its derives and
//! its auto traits such as `Send`/`Sync`; blanket impls omitted). The suite fails when the API
//! changes without the snapshot changing with it: review the diff, then
//! `cargo xtask public-api --bless` and commit the snapshot.

use std::process::Command;

use crate::{ci, root, section, Tally};

const SNAPSHOT: &str = "docs/public-api.txt";

fn have_tool() -> bool {
    Command::new("cargo-public-api")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs cargo-public-api from crates.io if it is missing (it also needs the nightly
/// toolchain, which the Miri step installs).
pub fn install() -> bool {
    have_tool()
        || Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "--locked", "cargo-public-api"])
            .status()
            .is_ok_and(|s| s.success())
}

fn current() -> Result<String, String> {
    let out = Command::new("cargo-public-api")
        .current_dir(root())
        .args([
            "-p",
            "linux-aio",
            "-s",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .output()
        .map_err(|e| format!("cargo-public-api: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The suite's check (or, with `bless`, rewrites the snapshot).
pub fn run(t: &mut Tally, bless: bool) {
    let what = "public API matches docs/public-api.txt";
    section(what);
    if !install() {
        let why = "cargo-public-api is not installed and could not be installed";
        if ci() {
            return t.fail(&format!("{what}: {why}"));
        }
        return t.skip(what, why);
    }
    let now = match current() {
        Ok(s) => s,
        Err(e) => {
            println!("{e}");
            return t.fail(&format!("{what}: cargo public-api failed"));
        }
    };
    let path = root().join(SNAPSHOT);
    if bless {
        match std::fs::write(&path, &now) {
            Ok(()) => t.pass(&format!("wrote {SNAPSHOT}")),
            Err(e) => t.fail(&format!("writing {SNAPSHOT}: {e}")),
        }
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == now {
        return t.pass(what);
    }
    let old: std::collections::BTreeSet<&str> = committed.lines().collect();
    let new: std::collections::BTreeSet<&str> = now.lines().collect();
    for gone in old.difference(&new) {
        println!("- {gone}");
    }
    for added in new.difference(&old) {
        println!("+ {added}");
    }
    t.fail(&format!(
        "{what}: the API changed (lines above); if intended, `cargo xtask public-api --bless`"
    ));
}
