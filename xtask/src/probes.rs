//! The compile-time half of the safe API's guarantees: `tests/compile_fail/*.rs`, each a small
//! program whose first line says what the compiler must do with it:
//!
//! - `//! expect: E0597 <text>`: fail, with that error code and that text in its errors;
//! - `//! expect: <text>`: fail, with that text in its errors;
//! - `//! expect: ok`: compile (a control, showing that the others fail for their stated
//!   reason and not for a typo).
//!
//! Each probe counts as one test. They are built against the library as `cargo build` makes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, section, Tally};

/// The first line's expectation.
enum Expect {
    Compiles,
    Fails { code: Option<String>, text: String },
}

fn expectation(source: &str) -> Option<Expect> {
    let line = source.lines().next()?.strip_prefix("//! expect: ")?.trim();
    if line == "ok" {
        return Some(Expect::Compiles);
    }
    let (code, text) = match line.split_once(' ') {
        Some((c, rest)) if c.len() == 5 && c.starts_with('E') => (Some(c.to_string()), rest),
        _ if line.len() == 5 && line.starts_with('E') => (Some(line.to_string()), ""),
        _ => (None, line),
    };
    Some(Expect::Fails {
        code,
        text: text.to_string(),
    })
}

/// The rlibs of `linux_aio` and `rustix` that `cargo build -p linux-aio --lib` produces.
fn library_rlibs() -> Result<Vec<(String, PathBuf)>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root())
        .args([
            "build",
            "-q",
            "-p",
            "linux-aio",
            "--lib",
            "--message-format=json",
        ])
        .output()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p linux-aio failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut rlibs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = v["target"]["name"].as_str().unwrap_or("");
        if v["reason"] != "compiler-artifact" || !["linux_aio", "rustix"].contains(&name) {
            continue;
        }
        for f in v["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".rlib")) {
                rlibs.push((name.to_string(), PathBuf::from(f)));
            }
        }
    }
    if rlibs.len() < 2 {
        return Err(format!("found only {rlibs:?} in cargo's output"));
    }
    Ok(rlibs)
}

pub fn run(t: &mut Tally) {
    section("compile-fail probes (tests/compile_fail)");
    let rlibs = match library_rlibs() {
        Ok(r) => r,
        Err(e) => return t.fail(&format!("compile-fail probes: {e}")),
    };
    let deps = rlibs[0].1.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dir = root().join("tests/compile_fail");
    let mut probes: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    probes.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    probes.sort();
    if probes.is_empty() {
        return t.fail("compile-fail probes: none found in tests/compile_fail");
    }
    let out_dir = root().join(format!("target/compile-fail-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&out_dir);
    for probe in &probes {
        let name = probe.file_stem().unwrap().to_string_lossy().into_owned();
        let what = format!("compile-fail probe {name}");
        let source = std::fs::read_to_string(probe).unwrap_or_default();
        let Some(expect) = expectation(&source) else {
            t.fail(&format!("{what}: no `//! expect:` first line"));
            continue;
        };
        let mut cmd = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
        cmd.args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--error-format=short",
        ])
        .arg("-o")
        .arg(out_dir.join(&name))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()));
        for (crate_name, rlib) in &rlibs {
            cmd.arg("--extern")
                .arg(format!("{crate_name}={}", rlib.display()));
        }
        let result = cmd.arg(probe).output();
        let Ok(result) = result else {
            t.fail(&format!("{what}: cannot run rustc"));
            continue;
        };
        let errors = String::from_utf8_lossy(&result.stderr).into_owned();
        let verdict = match (&expect, result.status.success()) {
            (Expect::Compiles, true) => Ok(()),
            (Expect::Compiles, false) => Err(format!("does not compile:\n{errors}")),
            (Expect::Fails { .. }, true) => Err("compiles, and must not".to_string()),
            (Expect::Fails { code, text }, false) => {
                let code_ok = code
                    .as_ref()
                    .is_none_or(|c| errors.contains(&format!("error[{c}]")));
                if code_ok && errors.contains(text.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "fails, but not with {} {text:?}:\n{errors}",
                        code.as_deref().unwrap_or("")
                    ))
                }
            }
        };
        match verdict {
            Ok(()) => t.pass(&what),
            Err(why) => {
                println!("{why}");
                t.fail(&what);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[cfg(test)]
mod tests {
    use super::{expectation, Expect};

    #[test]
    fn expectation_lines() {
        assert!(matches!(
            expectation("//! expect: ok\nfn main() {}"),
            Some(Expect::Compiles)
        ));
        match expectation("//! expect: E0597 `buf` does not live long enough") {
            Some(Expect::Fails { code, text }) => {
                assert_eq!(code.as_deref(), Some("E0597"));
                assert_eq!(text, "`buf` does not live long enough");
            }
            _ => panic!(),
        }
        match expectation("//! expect: lifetime may not live long enough") {
            Some(Expect::Fails { code, text }) => {
                assert_eq!(code, None);
                assert_eq!(text, "lifetime may not live long enough");
            }
            _ => panic!(),
        }
        assert!(expectation("fn main() {}").is_none());
    }
}
