//! The pinned Debian packages of the guests: each architecture's kernels (vm/kernels.lock, a
//! row per kernel series) and libaio (vm/libaio.lock), downloaded with apt-get through a private
//! configuration under target/vm-cache/ (the system's apt configuration is read for its mirror,
//! never changed), checked against the pinned sha256, and unpacked: of a kernel, the boot image
//! and the modules the guest loads (with the modules they depend on); of libaio, its shared
//! library.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::root;

/// What the guest boots.
pub struct Kernel {
    /// `<package>=<version>`, for messages.
    pub name: String,
    pub image: PathBuf,
    /// The modules found in the package, each after the modules it depends on (load order).
    pub modules: Vec<PathBuf>,
}

/// Why there is no kernel.
pub enum Error {
    /// Cannot be had here (the mirror dropped the pinned version, no network): a skip.
    Unavailable(String),
    /// Something is wrong (a bad lock file, a checksum mismatch): a failure.
    Broken(String),
}

/// Who boots a kernel of vm/kernels.lock (its `<runs>` column).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Runs {
    /// The architecture's kernel: `cargo xtask vm` without `--kernel`, and `cargo xtask test`.
    Default,
    /// `cargo xtask test` boots it too.
    Test,
    /// Only when asked for by `--kernel`.
    Demand,
}

/// One row of vm/kernels.lock.
pub struct KernelPin {
    pub arch: String,
    /// `5.10`, `6.1`, `6.12`: what `--kernel` names.
    pub series: String,
    pub runs: Runs,
    pin: Pin,
}

/// One line of a lock file in vm/.
struct Pin {
    lock: String,
    deb_arch: String,
    suite: String,
    package: String,
    version: String,
    sha256: String,
}

/// Every kernel of vm/kernels.lock, in the file's order.
pub fn kernels() -> Result<Vec<KernelPin>, Error> {
    lock_lines("kernels.lock")?
        .into_iter()
        .map(|f| {
            let [arch, series, runs, pin @ ..] = &f[..] else {
                return Err(bad_line("kernels.lock", &f));
            };
            let runs = match runs.as_str() {
                "default" => Runs::Default,
                "test" => Runs::Test,
                "demand" => Runs::Demand,
                _ => return Err(bad_line("kernels.lock", &f)),
            };
            Ok(KernelPin {
                arch: arch.clone(),
                series: series.clone(),
                runs,
                pin: pin_of("kernels.lock", pin).ok_or_else(|| bad_line("kernels.lock", &f))?,
            })
        })
        .collect()
}

/// Fetches a pinned kernel (from the cache when it is there) with the named modules and the
/// modules they depend on.
pub fn fetch(k: &KernelPin, modules: &[&str]) -> Result<Kernel, Error> {
    let deb = deb(&k.pin)?;
    let pin = &k.pin;
    let name = format!("{}={}", pin.package, pin.version);
    let tree = root()
        .join("target/vm-cache/kernels")
        .join(format!("{}_{}", pin.package, pin.version));
    let (image, modules) = unpack(&deb, &tree, modules)?;
    Ok(Kernel {
        name,
        image,
        modules,
    })
}

/// Debian's libaio for `arch`, pinned in vm/libaio.lock: `<package>=<version>` and the shared
/// library (the file behind the package's `libaio.so.1` link, or `libaio.so.1t64` in trixie's
/// libaio1t64, see vm/libaio.lock).
pub fn libaio(arch: &str) -> Result<(String, PathBuf), Error> {
    let line = lock_lines("libaio.lock")?
        .into_iter()
        .find(|f| f.first().is_some_and(|a| a == arch))
        .ok_or_else(|| Error::Broken(format!("no line for {arch} in vm/libaio.lock")))?;
    let pin = pin_of("libaio.lock", &line[1..]).ok_or_else(|| bad_line("libaio.lock", &line))?;
    let deb = deb(&pin)?;
    let tree = root()
        .join("target/vm-cache/libaio")
        .join(format!("{}_{}_{}", pin.package, pin.version, pin.deb_arch));
    let members = tar(&deb, &["-t"], &[])?;
    let members: Vec<&str> = members
        .lines()
        .filter(|m| m.contains("/libaio.so.1"))
        .collect();
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).map_err(|e| Error::Broken(e.to_string()))?;
    tar(&deb, &["-x", "-C", &tree.to_string_lossy()], &members)?;
    let lib = members
        .iter()
        .map(|m| tree.join(m.trim_start_matches("./")))
        .find(|p| p.symlink_metadata().is_ok_and(|m| m.is_file()))
        .ok_or_else(|| Error::Broken(format!("{}: no libaio.so.1*", deb.display())))?;
    Ok((format!("{}={}", pin.package, pin.version), lib))
}

/// The pinned .deb, from the cache or downloaded, checksum verified.
fn deb(pin: &Pin) -> Result<PathBuf, Error> {
    let cache = root().join("target/vm-cache");
    let deb = cache.join("debs").join(format!(
        "{}_{}_{}.deb",
        pin.package, pin.version, pin.deb_arch
    ));
    // A cached file that does not match (an interrupted download) is fetched again.
    if !(deb.is_file() && sha256(&deb)? == pin.sha256) {
        let _ = std::fs::remove_file(&deb);
        download(pin, &cache, &deb)?;
        let sum = sha256(&deb)?;
        if sum != pin.sha256 {
            return Err(Error::Broken(format!(
                "{}: sha256 {sum}, vm/{} says {} (a new pin? then paste this sum there)",
                deb.display(),
                pin.lock,
                pin.sha256
            )));
        }
    }
    Ok(deb)
}

/// The lines of vm/`lock` that are not comments, split into fields.
fn lock_lines(lock: &str) -> Result<Vec<Vec<String>>, Error> {
    let path = root().join("vm").join(lock);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Broken(format!("{}: {e}", path.display())))?;
    Ok(parse_lock(&text))
}

fn parse_lock(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect()
}

fn bad_line(lock: &str, fields: &[String]) -> Error {
    Error::Broken(format!("bad line in vm/{lock}: {}", fields.join(" ")))
}

/// `<Debian arch> <suite> <package> <version> <sha256>`, the end of every line of a lock.
fn pin_of(lock: &str, fields: &[String]) -> Option<Pin> {
    let [deb_arch, suite, package, version, sha256] = fields else {
        return None;
    };
    let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| Pin {
        lock: lock.into(),
        deb_arch: deb_arch.clone(),
        suite: suite.clone(),
        package: package.clone(),
        version: version.clone(),
        sha256: sha256.clone(),
    })
}

/// `apt-get update` on a private sources list that names only the pin's suite, then
/// `apt-get download`. On failure, says what the mirror offers now.
fn download(pin: &Pin, cache: &Path, deb: &Path) -> Result<(), Error> {
    // One private configuration per suite and architecture: an architecture's kernels come
    // from several suites.
    let dir = cache
        .join("apt")
        .join(format!("{}-{}", pin.suite, pin.deb_arch));
    for sub in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| Error::Broken(format!("{}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(deb.parent().unwrap()).map_err(|e| Error::Broken(e.to_string()))?;
    let archive = if pin.suite.ends_with("-security") {
        "debian-security"
    } else {
        "debian"
    };
    let mirror = mirror(archive).ok_or_else(|| {
        Error::Unavailable(format!("no `{archive}` mirror in the system's apt sources"))
    })?;
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let sources = format!(
        "deb [arch={} signed-by={keyring}] {mirror} {} main\n",
        pin.deb_arch, pin.suite
    );
    std::fs::write(dir.join("sources.list"), sources).map_err(|e| Error::Broken(e.to_string()))?;

    let apt = |program: &str| {
        let mut c = Command::new(program);
        let o = |k: &str, v: &Path| format!("{k}={}", v.display());
        for opt in [
            o("Dir::Etc::SourceList", &dir.join("sources.list")),
            o("Dir::Etc::SourceParts", Path::new("/dev/null")),
            o("Dir::Etc::Preferences", Path::new("/dev/null")),
            o("Dir::Etc::PreferencesParts", Path::new("/dev/null")),
            o("Dir::State::Lists", &dir.join("lists")),
            o("Dir::State::Status", Path::new("/dev/null")),
            o("Dir::Cache", &dir.join("cache")),
            format!("APT::Architecture={}", pin.deb_arch),
            format!("APT::Architectures={}", pin.deb_arch),
            "Acquire::Languages=none".into(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            // The cache is not the _apt user's to write.
            "APT::Sandbox::User=root".into(),
        ] {
            c.arg("-o").arg(opt);
        }
        c
    };
    println!(
        "downloading {}={} ({} {})",
        pin.package, pin.version, pin.suite, pin.deb_arch
    );
    let update = apt("apt-get").args(["update", "-qq"]).output();
    let spec = format!("{}={}", pin.package, pin.version);
    let got = apt("apt-get")
        .args(["download", "-qq", &spec])
        .current_dir(deb.parent().unwrap())
        .output();
    if got.as_ref().is_ok_and(|o| o.status.success()) && deb.is_file() {
        return Ok(());
    }
    let why = |r: &std::io::Result<std::process::Output>| match r {
        Ok(o) => String::from_utf8_lossy(&o.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        Err(e) => e.to_string(),
    };
    // What the mirror offers now; of a kernel, the flavour's metapackage names the current ABI.
    let flavour = pin.package.rsplit('-').next().unwrap_or_default();
    let now = if !pin.package.starts_with("linux-image-") {
        Some(pin.package.clone())
    } else {
        apt("apt-cache")
            .args([
                "depends",
                "--no-recommends",
                "--no-suggests",
                &format!("linux-image-{flavour}"),
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("Depends: ")
                        .filter(|d| d.starts_with("linux-image-"))
                        .map(str::to_string)
                })
            })
            .ok()
            .flatten()
    };
    let now = match now {
        Some(p) => {
            let v = apt("apt-cache").args(["madison", &p]).output().ok();
            let v = v
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let listed = v.split('|').nth(1).map(str::trim);
            if p == pin.package && listed == Some(pin.version.as_str()) {
                format!(
                    "the mirror's index lists {} {} but the file could not be fetched: \
                     pin a version that apt-get can download in vm/{}",
                    pin.package, pin.version, pin.lock
                )
            } else {
                format!("the mirror offers {v}: update vm/{}", pin.lock)
            }
        }
        None => format!("apt-get update: {}", why(&update)),
    };
    Err(Error::Unavailable(format!(
        "cannot download {spec} ({}); {now}",
        why(&got)
    )))
}

/// The system's mirror URI of `archive` (`debian` or `debian-security`), from its apt sources.
fn mirror(archive: &str) -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(d) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources")),
        );
    }
    files.sort();
    let text: String = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|w| w.trim_end_matches('/'))
        .find(|w| {
            w.starts_with("http") && w.contains("://") && w.rsplit('/').next() == Some(archive)
        })
        .map(str::to_string)
}

fn sha256(path: &Path) -> Result<String, Error> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| Error::Broken(format!("sha256sum: {e}")))?;
    let out = String::from_utf8_lossy(&out.stdout);
    Ok(out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Unpacks the boot image and `modules` (by name, without `.ko`) from `deb` into `tree`, once,
/// with every module they depend on: the list of unpacked files is kept in `tree/files`, image
/// first, then the modules in load order.
///
/// The package has no modules.dep (depmod writes it when the package is installed), so the
/// dependencies are each module's own `depends=` (its .modinfo): they differ between kernel
/// series (crc16, mbcache, jbd2 and the crc32c implementations move around).
fn unpack(deb: &Path, tree: &Path, modules: &[&str]) -> Result<(PathBuf, Vec<PathBuf>), Error> {
    let manifest = tree.join("files");
    if !manifest.is_file() {
        let members = tar(deb, &["-t"], &[])?;
        let members: Vec<&str> = members.lines().collect();
        let image = members
            .iter()
            .find(|m| m.starts_with("./boot/vmlinu"))
            .ok_or_else(|| Error::Broken(format!("{}: no ./boot/vmlinu*", deb.display())))?;
        // Module name (`-` and `_` are the same) to package member.
        let by_name = |name: &str| {
            let name = name.replace('-', "_");
            members.iter().copied().find(|m| {
                let file = m.rsplit('/').next().unwrap_or_default();
                [".ko", ".ko.xz", ".ko.zst"].iter().any(|ext| {
                    file.strip_suffix(ext)
                        .is_some_and(|stem| stem.replace('-', "_") == name)
                })
            })
        };
        let _ = std::fs::remove_dir_all(tree);
        std::fs::create_dir_all(tree).map_err(|e| Error::Broken(e.to_string()))?;
        let dir = tree.to_string_lossy().into_owned();
        tar(deb, &["-x", "-C", &dir], &[image])?;
        // Unpack the named modules, then what they depend on, one round of tar per level; a
        // name without a file in the package is built into the kernel.
        let mut depends: Vec<(String, &str, Vec<String>)> = Vec::new();
        let mut todo: Vec<String> = modules.iter().map(|m| m.replace('-', "_")).collect();
        while !todo.is_empty() {
            let mut round = Vec::new();
            for name in std::mem::take(&mut todo) {
                if depends.iter().any(|(n, ..)| *n == name) || round.iter().any(|(n, _)| *n == name)
                {
                    continue;
                }
                match by_name(&name) {
                    Some(m) => round.push((name, m)),
                    None => println!("module {name} is not in {} (built in)", deb.display()),
                }
            }
            let files: Vec<&str> = round.iter().map(|(_, m)| *m).collect();
            if !files.is_empty() {
                tar(deb, &["-x", "-C", &dir], &files)?;
            }
            for (name, member) in round {
                let deps = module_depends(&tree.join(member.trim_start_matches("./")))?;
                todo.extend(deps.iter().cloned());
                depends.push((name, member, deps));
            }
        }
        let mut wanted = vec![image.to_string()];
        let mut order: Vec<&str> = Vec::new();
        for name in modules {
            load_order(&name.replace('-', "_"), &depends, &mut order, 0)?;
        }
        for name in order {
            let (_, member, _) = depends.iter().find(|(n, ..)| n == name).unwrap();
            wanted.push(member.to_string());
        }
        std::fs::write(&manifest, wanted.join("\n")).map_err(|e| Error::Broken(e.to_string()))?;
    }
    let text = std::fs::read_to_string(&manifest).map_err(|e| Error::Broken(e.to_string()))?;
    let mut files = text.lines().map(|m| tree.join(m.trim_start_matches("./")));
    let image = files
        .next()
        .ok_or_else(|| Error::Broken(format!("empty {}", manifest.display())))?;
    Ok((image, files.collect()))
}

/// Appends `name` to `order` after the modules it depends on (each once; built-in ones, which
/// have no entry in `depends`, are left out).
fn load_order<'a>(
    name: &str,
    depends: &'a [(String, &str, Vec<String>)],
    order: &mut Vec<&'a str>,
    depth: usize,
) -> Result<(), Error> {
    let Some((n, _, deps)) = depends.iter().find(|(n, ..)| n == name) else {
        return Ok(());
    };
    if order.contains(&n.as_str()) {
        return Ok(());
    }
    if depth > depends.len() {
        return Err(Error::Broken(format!(
            "modules depend on each other in a cycle ({name})"
        )));
    }
    for d in deps {
        load_order(d, depends, order, depth + 1)?;
    }
    order.push(n);
    Ok(())
}

/// The `depends=` of a module file (`.ko`, or compressed `.ko.xz`/`.ko.zst`): the modules it
/// needs loaded first, by name.
fn module_depends(file: &Path) -> Result<Vec<String>, Error> {
    let bytes = match file.extension().and_then(|e| e.to_str()) {
        Some("ko") => std::fs::read(file).map_err(|e| Error::Broken(e.to_string())),
        Some(tool @ ("xz" | "zst")) => {
            let program = if tool == "xz" { "xz" } else { "zstd" };
            let out = Command::new(program)
                .arg("-dc")
                .arg(file)
                .output()
                .map_err(|e| Error::Broken(format!("{program}: {e}")))?;
            if out.status.success() {
                Ok(out.stdout)
            } else {
                Err(Error::Broken(format!(
                    "{program} -dc {}: failed",
                    file.display()
                )))
            }
        }
        _ => Err(Error::Broken(format!("{}: not a module", file.display()))),
    }?;
    Ok(modinfo_depends(&bytes))
}

/// `depends=a,b` among the NUL-separated `key=value` strings of a module's .modinfo section.
fn modinfo_depends(module: &[u8]) -> Vec<String> {
    let key = b"\0depends=";
    let Some(at) = module.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let value = &module[at + key.len()..];
    let value = &value[..value.iter().position(|&b| b == 0).unwrap_or(value.len())];
    String::from_utf8_lossy(value)
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.replace('-', "_"))
        .collect()
}

/// `dpkg-deb --fsys-tarfile deb | tar <args> <members>`; returns tar's stdout.
fn tar(deb: &Path, args: &[&str], members: &[&str]) -> Result<String, Error> {
    let broken = |what: &str, e: &dyn std::fmt::Display| Error::Broken(format!("{what}: {e}"));
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| broken("dpkg-deb", &e))?;
    let out = Command::new("tar")
        .args(args)
        .args(members)
        .stdin(dpkg.stdout.take().unwrap())
        .output()
        .map_err(|e| broken("tar", &e))?;
    let dpkg_ok = dpkg.wait().is_ok_and(|s| s.success());
    if !out.status.success() || !dpkg_ok {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(broken(&format!("unpacking {}", deb.display()), &err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn modinfo_depends() {
        let info = b"\x7fELF...\0license=GPL\0depends=mbcache,jbd2,crc16\0intree=Y\0name=ext4\0";
        assert_eq!(super::modinfo_depends(info), ["mbcache", "jbd2", "crc16"]);
        assert!(super::modinfo_depends(b"\0depends=\0name=loop\0").is_empty());
        assert!(super::modinfo_depends(b"\0name=crc16\0").is_empty());
    }

    #[test]
    fn load_order() {
        let depends = [
            (
                "ext4".to_string(),
                "",
                vec!["mbcache".into(), "jbd2".into()],
            ),
            ("jbd2".to_string(), "", vec!["crc32c_generic".into()]),
            ("mbcache".to_string(), "", vec![]),
            ("loop".to_string(), "", vec![]),
        ];
        let mut order = Vec::new();
        for m in ["ext4", "loop", "jbd2"] {
            super::load_order(m, &depends, &mut order, 0).ok().unwrap();
        }
        assert_eq!(order, ["mbcache", "jbd2", "ext4", "loop"]);
    }

    /// Every architecture has exactly one default kernel, no series twice, and a line per
    /// series the lock's comment promises.
    #[test]
    fn kernels_lock() {
        let kernels = super::kernels().ok().expect("vm/kernels.lock parses");
        for (arch, _) in crate::ARCHES {
            let mine: Vec<_> = kernels.iter().filter(|k| k.arch == *arch).collect();
            let defaults = mine
                .iter()
                .filter(|k| k.runs == super::Runs::Default)
                .count();
            assert_eq!(defaults, 1, "{arch}: one default kernel");
            let mut series: Vec<&str> = mine.iter().map(|k| k.series.as_str()).collect();
            series.sort();
            let n = series.len();
            series.dedup();
            assert_eq!(series.len(), n, "{arch}: a series twice");
            assert!(n >= 1, "{arch}: no kernel");
        }
        assert!(kernels
            .iter()
            .all(|k| crate::ARCHES.iter().any(|(a, _)| *a == k.arch)));
    }
}
