//! The pinned Debian packages of the guests: each architecture's kernel (vm/kernels.lock) and
//! libaio (vm/libaio.lock), downloaded with apt-get through a private configuration under
//! target/vm-cache/ (the system's apt configuration is read for its mirror, never changed),
//! checked against the pinned sha256, and unpacked: of a kernel, the boot image and the modules
//! the guest loads; of libaio, its shared library.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::root;

/// What the guest boots.
pub struct Kernel {
    /// `<package>=<version>`, for messages.
    pub name: String,
    pub image: PathBuf,
    /// The modules found in the package, in the order asked for (load order).
    pub modules: Vec<PathBuf>,
}

/// Why there is no kernel.
pub enum Error {
    /// Cannot be had here (the mirror dropped the pinned version, no network): a skip.
    Unavailable(String),
    /// Something is wrong (a bad lock file, a checksum mismatch): a failure.
    Broken(String),
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

/// Fetches `arch`'s pinned kernel (from the cache when it is there) with the named modules.
pub fn fetch(arch: &str, modules: &[&str]) -> Result<Kernel, Error> {
    let (pin, deb) = deb("kernels.lock", arch)?;
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
    let (pin, deb) = deb("libaio.lock", arch)?;
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

/// The .deb pinned for `arch` in vm/`lock`, from the cache or downloaded, checksum verified.
fn deb(lock: &str, arch: &str) -> Result<(Pin, PathBuf), Error> {
    let pin = pin(lock, arch)?;
    let cache = root().join("target/vm-cache");
    let deb = cache.join("debs").join(format!(
        "{}_{}_{}.deb",
        pin.package, pin.version, pin.deb_arch
    ));
    // A cached file that does not match (an interrupted download) is fetched again.
    if !(deb.is_file() && sha256(&deb)? == pin.sha256) {
        let _ = std::fs::remove_file(&deb);
        download(&pin, &cache, &deb)?;
        let sum = sha256(&deb)?;
        if sum != pin.sha256 {
            return Err(Error::Broken(format!(
                "{}: sha256 {sum}, vm/{lock} says {} (a new pin? then paste this sum there)",
                deb.display(),
                pin.sha256
            )));
        }
    }
    Ok((pin, deb))
}

fn pin(lock: &str, arch: &str) -> Result<Pin, Error> {
    let path = root().join("vm").join(lock);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Broken(format!("{}: {e}", path.display())))?;
    let line = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&arch))
        .ok_or_else(|| Error::Broken(format!("no line for {arch} in vm/{lock}")))?;
    let [_, deb_arch, suite, package, version, sha256] = line[..] else {
        return Err(Error::Broken(format!(
            "bad line in vm/{lock}: {}",
            line.join(" ")
        )));
    };
    Ok(Pin {
        lock: lock.into(),
        deb_arch: deb_arch.into(),
        suite: suite.into(),
        package: package.into(),
        version: version.into(),
        sha256: sha256.into(),
    })
}

/// `apt-get update` on a private sources list that names only the pin's suite, then
/// `apt-get download`. On failure, says what the mirror offers now.
fn download(pin: &Pin, cache: &Path, deb: &Path) -> Result<(), Error> {
    let dir = cache.join("apt").join(&pin.deb_arch);
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
            format!("the mirror offers {v}: update vm/{}", pin.lock)
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

/// Unpacks the boot image and `modules` (by name, without `.ko`) from `deb` into `tree`, once:
/// the list of unpacked files is kept in `tree/files`, image first.
fn unpack(deb: &Path, tree: &Path, modules: &[&str]) -> Result<(PathBuf, Vec<PathBuf>), Error> {
    let manifest = tree.join("files");
    if !manifest.is_file() {
        let members = tar(deb, &["-t"], &[])?;
        let members: Vec<&str> = members.lines().collect();
        let image = members
            .iter()
            .find(|m| m.starts_with("./boot/vmlinu"))
            .ok_or_else(|| Error::Broken(format!("{}: no ./boot/vmlinu*", deb.display())))?;
        let mut wanted = vec![image.to_string()];
        for name in modules {
            let found = members.iter().find(|m| {
                m.ends_with(&format!("/{name}.ko")) || m.ends_with(&format!("/{name}.ko.xz"))
            });
            match found {
                Some(m) => wanted.push(m.to_string()),
                None => println!("module {name} is not in {} (built in?)", deb.display()),
            }
        }
        let _ = std::fs::remove_dir_all(tree);
        std::fs::create_dir_all(tree).map_err(|e| Error::Broken(e.to_string()))?;
        let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        tar(deb, &["-x", "-C", &tree.to_string_lossy()], &refs)?;
        std::fs::write(&manifest, wanted.join("\n")).map_err(|e| Error::Broken(e.to_string()))?;
    }
    let text = std::fs::read_to_string(&manifest).map_err(|e| Error::Broken(e.to_string()))?;
    let mut files = text.lines().map(|m| tree.join(m.trim_start_matches("./")));
    let image = files
        .next()
        .ok_or_else(|| Error::Broken(format!("empty {}", manifest.display())))?;
    Ok((image, files.collect()))
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
