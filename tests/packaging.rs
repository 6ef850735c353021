//! The packages: the man page is clean groff that documents every action, subcommand and
//! environment variable; the Debian package (cargo-deb) installs with `dpkg -i`, serves a real
//! skopeo round trip from `/usr/bin`, and leaves nothing behind when purged; the source RPM that
//! `packaging/rpm/srpm.sh` writes rebuilds offline with `rpmbuild --rebuild`, and its binary runs.
//!
//! The release binary is built once per test run into `target/packaging/target`, a target dir
//! of its own, so that the nested cargo never waits on the build lock of the cargo running us.

mod common;
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use support::image::OciImage;
use support::registry::Registry;
use support::{find_tool, mode_of, require_tool, run_bounded, write_json, Helper, Output};

const PACKAGE: &str = "docker-credential-icr";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A release build with fat LTO on a small, busy machine; or installing cargo-deb.
const BUILD_TIMEOUT: Duration = Duration::from_secs(2400);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn packaging_dir() -> PathBuf {
    workspace().join("target").join("packaging")
}

fn man_page() -> PathBuf {
    workspace().join("packaging/man/docker-credential-icr.1")
}

/// A command whose environment is ours (cargo needs HOME, CARGO_HOME, RUSTUP_HOME…) but
/// whose target dir is the packaging one.
fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(workspace()).env("CARGO_TARGET_DIR", packaging_dir().join("target"));
    command
}

#[track_caller]
fn run_ok(command: Command, timeout: Duration) -> Output {
    let output = run_bounded(command, None, timeout);
    output.assert_success();
    output
}

/// `target/packaging/target/release/docker-credential-icr`, built once per test run.
fn release_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let mut build = cargo();
        build.args(["build", "--release", "--locked", "--bin", PACKAGE]);
        // The linker's map of this very build, for the layout test (build.rs passes it on).
        build.env("DOCKER_CREDENTIAL_ICR_LINK_MAP", link_map());
        run_ok(build, BUILD_TIMEOUT);
        let binary = packaging_dir().join("target/release").join(PACKAGE);
        assert!(binary.is_file(), "cargo build --release left no {}", binary.display());
        binary
    })
}

/// The linker's map of [`release_binary`], beside it in the packaging target dir.
fn link_map() -> PathBuf {
    packaging_dir().join("target/release/link.map")
}

/// `cargo-deb`: from `$CARGO_HOME/bin` when it is there, else installed (once) into
/// `target/packaging/tools` with `cargo install cargo-deb --locked`.
fn cargo_deb() -> PathBuf {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
        let tools = packaging_dir().join("tools");
        let candidates: Vec<PathBuf> =
            cargo_home.into_iter().map(|h| h.join("bin/cargo-deb")).chain([tools.join("bin/cargo-deb")]).collect();
        if let Some(found) = candidates.iter().find(|c| c.is_file()) {
            return found.clone();
        }
        eprintln!("packaging: installing cargo-deb into {}", tools.display());
        let mut install = Command::new(env!("CARGO"));
        install.args(["install", "cargo-deb", "--locked", "--root"]).arg(&tools);
        run_ok(install, BUILD_TIMEOUT);
        let installed = tools.join("bin/cargo-deb");
        assert!(installed.is_file(), "cargo install cargo-deb left no {}", installed.display());
        installed
    })
    .clone()
}

/// Builds the .deb from the release binary and returns its path.
fn build_deb() -> PathBuf {
    release_binary();
    let out = packaging_dir().join("deb");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("create deb output dir");
    let mut deb = cargo();
    deb.arg("deb").args(["--no-build", "--no-strip", "--output"]).arg(&out);
    // cargo finds `cargo-deb` on PATH as the `deb` subcommand.
    let tool_dir = cargo_deb().parent().expect("bin dir").to_path_buf();
    let path = std::env::var("PATH").unwrap_or_default();
    deb.env("PATH", format!("{}:{path}", tool_dir.display()));
    run_ok(deb, BUILD_TIMEOUT);
    let debs: Vec<PathBuf> = fs::read_dir(&out)
        .expect("read deb output dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "expected one .deb in {}: {debs:?}", out.display());
    debs[0].clone()
}

/// Runs dpkg (holding the lock that apt-get installs in this binary hold too).
fn dpkg(args: &[&str]) -> Output {
    let _guard = support::PACKAGE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut command = Command::new(require_tool("dpkg", "dpkg"));
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    run_bounded(command, None, Duration::from_secs(300))
}

/// Purges the package when the test ends, passed or not, so that a failure leaves no
/// installed package behind.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", PACKAGE]);
    }
}

/// The environment variables the code reads or sets: quoted names in `src/` with the prefixes
/// of this domain.
fn env_vars_in_src() -> BTreeSet<String> {
    let prefixes =
        ["DOCKER_CREDENTIAL_ICR_", "IBMCLOUD_", "IC_", "BLUEMIX_", "DOCKER_", "REGISTRY_", "ICR_", "XDG_", "SSL_"];
    let mut names = BTreeSet::new();
    let mut stack = vec![workspace().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = fs::read_to_string(&path).expect("read source file");
            for quoted in text.split('"').skip(1).step_by(2) {
                let is_name = !quoted.is_empty()
                    && quoted.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if is_name && prefixes.iter().any(|p| quoted.starts_with(p)) {
                    names.insert(quoted.to_owned());
                }
            }
        }
    }
    names
}

/// The man page's text with groff's escaped hyphens turned back into plain ones.
fn man_text() -> String {
    fs::read_to_string(man_page()).expect("read the man page").replace("\\-", "-")
}

#[test]
fn man_page_is_clean_groff() {
    let groff = require_tool("groff", "groff");
    let mut command = Command::new(groff);
    command.args(["-man", "-ww", "-z"]).arg(man_page());
    let output = run_bounded(command, None, Duration::from_secs(60));
    assert!(output.success() && output.stderr.is_empty(), "groff reported problems:\n{output}");
}

#[test]
fn man_page_documents_every_action_subcommand_environment_variable_and_file() {
    let text = man_text();
    let entries: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(".B ").or_else(|| l.strip_prefix(".BI ")).or_else(|| l.strip_prefix(".BR ")))
        .collect();
    for action in ["get", "store", "erase", "list", "version", "configure", "explain", "exec", "kubelet"] {
        assert!(
            entries.iter().any(|e| e.split_whitespace().next() == Some(action)),
            "the man page has no entry for `{action}`"
        );
    }
    let documented = [
        "DOCKER_CREDENTIAL_ICR_MODE",
        "DOCKER_CREDENTIAL_ICR_CONFIG",
        "DOCKER_CREDENTIAL_ICR_CACHE_DIR",
        "DOCKER_CREDENTIAL_ICR_NO_CACHE",
        "DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT",
        "DOCKER_CREDENTIAL_ICR_LOG",
        "IBMCLOUD_API_KEY",
        "IC_API_KEY",
        "BLUEMIX_API_KEY",
        "IBMCLOUD_IAM_TOKEN",
        "IC_IAM_TOKEN",
        "IBMCLOUD_CR_PROFILE",
        "IBMCLOUD_CR_TOKEN",
        "IBMCLOUD_IAM_API_ENDPOINT",
        "IBMCLOUD_CONFIG_HOME",
        "IBMCLOUD_HOME",
        "DOCKER_CONFIG",
        "REGISTRY_AUTH_FILE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ];
    let in_src = env_vars_in_src();
    assert!(in_src.contains("IBMCLOUD_API_KEY"), "the scan of src/ found no variables: {in_src:?}");
    for name in documented.iter().copied().chain(in_src.iter().map(String::as_str)) {
        let environment = text.split(".SH ENVIRONMENT").nth(1).expect("an ENVIRONMENT section");
        let environment = environment.split("\n.SH ").next().unwrap_or_default();
        assert!(environment.contains(name), "the man page's ENVIRONMENT section does not name {name}");
    }
    for file in [
        "docker-credential-icr/config.json",
        "docker-credential-icr/credentials.json",
        "$XDG_CACHE_HOME/docker-credential-icr/",
        ".bluemix/config.json",
        ".ibmcloud/config.json",
        "/var/run/secrets/tokens/vault-token",
        "/var/run/secrets/tokens/sa-token",
        "/var/run/secrets/codeengine.cloud.ibm.com/compute-resource-token/token",
    ] {
        let files = text.split(".SH FILES").nth(1).expect("a FILES section");
        assert!(files.contains(file), "the man page's FILES section does not name {file}");
    }
}

#[test]
fn packages_carry_the_crate_version() {
    let spec = fs::read_to_string(workspace().join("packaging/rpm/docker-credential-icr.spec")).expect("read spec");
    let version = spec.lines().find_map(|l| l.strip_prefix("Version:")).map(str::trim);
    assert_eq!(version, Some(VERSION), "the RPM spec's Version should be Cargo.toml's");
    let th = man_text().lines().find(|l| l.starts_with(".TH ")).expect("a .TH line").to_owned();
    assert!(th.contains(&format!("docker-credential-icr {VERSION}")), "{th}");
}

#[test]
fn debian_package_installs_serves_skopeo_from_usr_bin_and_purges_cleanly() {
    assert!(support::is_root(), "installing the .deb needs root");
    let deb = build_deb();
    let deb_arg = deb.to_str().expect("UTF-8 path");

    let mut fields = Command::new(require_tool("dpkg-deb", "dpkg"));
    fields.args(["-f", deb_arg, "Package", "Version"]);
    let fields = run_ok(fields, Duration::from_secs(60));
    assert!(fields.stdout.starts_with(&format!("Package: {PACKAGE}\nVersion: {VERSION}")), "{fields}");
    let mut contents = Command::new(require_tool("dpkg-deb", "dpkg"));
    contents.args(["-c", deb_arg]);
    let contents = run_ok(contents, Duration::from_secs(60));
    for path in [
        "./usr/bin/docker-credential-icr",
        "./usr/share/man/man1/docker-credential-icr.1",
        "./usr/share/doc/docker-credential-icr/",
        "./usr/share/doc/docker-credential-icr/examples/credential-provider-config.yaml",
        "./usr/share/doc/docker-credential-icr/examples/credential-provider-config-node.yaml",
    ] {
        assert!(contents.stdout.contains(path), "the .deb has no {path}:\n{contents}");
    }

    let install = dpkg(&["-i", deb_arg]);
    install.assert_success();
    let installed = Installed;
    eprintln!("packaging: dpkg -i {} ... ok", deb.display());
    let listed = dpkg(&["-L", PACKAGE]);
    listed.assert_success();
    let files: Vec<PathBuf> =
        listed.stdout.lines().map(PathBuf::from).filter(|p| p.is_file() || p.is_symlink()).collect();
    assert!(files.contains(&PathBuf::from("/usr/bin/docker-credential-icr")), "{listed}");

    let mut version = Command::new("/usr/bin/docker-credential-icr");
    version.env_clear().arg("version");
    let version = run_ok(version, Duration::from_secs(30));
    assert_eq!(
        version.stdout,
        format!("docker-credential-icr (github.com/docker-credential-icr/docker-credential-icr) {VERSION}\n")
    );

    skopeo_round_trip_with_the_installed_helper();

    drop(installed);
    let status = dpkg(&["-s", PACKAGE]);
    assert!(!status.success(), "the package is still known to dpkg after --purge:\n{status}");
    for file in &files {
        assert!(!file.exists() && !file.is_symlink(), "{} is left behind after dpkg --purge", file.display());
    }
    assert!(!Path::new("/usr/share/doc/docker-credential-icr").exists(), "the doc dir is left behind");
    eprintln!("packaging: dpkg --purge {PACKAGE} ... ok");
}

/// login (store) → push, inspect (get) → logout (erase) with skopeo, the helper being the one
/// the package put in `/usr/bin` (the HOME's own bin dir is empty).
fn skopeo_round_trip_with_the_installed_helper() {
    const KEY: &str = "packaging-e2e-api-key-0123456789abcdef";
    let client = Helper::without_built_binary();
    let which = client.run_ok("sh", &["-c", "command -v docker-credential-icr"], None);
    assert_eq!(which.stdout, "/usr/bin/docker-credential-icr\n", "{which}");
    let registry = Registry::with_users(&[("iamapikey", KEY)]);
    let host = registry.host();
    client.write_config(&json!({ "registries": { host.clone(): {} } }));
    let authfile = client.home().join("auth.json");
    write_json(&authfile, &json!({ "credHelpers": { host.clone(): "icr" } }));
    let (authfile, cert_dir) = (authfile.to_str().expect("UTF-8"), registry.cert_dir().to_str().expect("UTF-8"));
    let image = OciImage::build(&client.home().join("image"), "latest", "installed helper\n");
    let target = format!("docker://{host}/pkg/img:1");

    let login = ["login", "--authfile", authfile, "--cert-dir", cert_dir, "-u", "iamapikey", "--password-stdin", &host];
    client.run_ok("skopeo", &login, Some(&format!("{KEY}\n")));
    assert_eq!(mode_of(&client.credentials_path()), 0o600);
    let reference = image.reference();
    let push = ["copy", "--dest-authfile", authfile, "--dest-cert-dir", cert_dir, &reference, &target];
    client.run_ok("skopeo", &push, None);
    let inspect = ["inspect", "--authfile", authfile, "--cert-dir", cert_dir, &target];
    let inspected = client.run_ok("skopeo", &inspect, None);
    let json: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("skopeo inspect prints JSON");
    assert_eq!(json["Digest"], image.manifest_digest.as_str(), "{inspected}");
    let users = registry.authenticated_users();
    assert!(!users.is_empty() && users.iter().all(|u| u == "iamapikey"), "{users:?}:\n{}", registry.log());
    client.run_ok("skopeo", &["logout", "--authfile", authfile, &host], None);
    let after = client.run("skopeo", &inspect, None);
    after.assert_failure();
    let stored = fs::read_to_string(client.credentials_path()).unwrap_or_default();
    assert!(!stored.contains(KEY), "logout left the key behind:\n{stored}");
    eprintln!(
        "packaging: client=skopeo helper=/usr/bin/docker-credential-icr host={host} login/push/inspect/logout ... ok"
    );
}

/// `packaging/rpm/srpm.sh` writes a source RPM of the crate and its vendored dependencies, and
/// `rpmbuild --rebuild` builds the package from it with no network at all (a network namespace
/// of its own, an empty CARGO_HOME: nothing cached to fall back on), as Fedora and openSUSE
/// build Rust packages; the binary of the rebuilt package runs.
#[test]
fn the_source_rpm_rebuilds_offline_and_the_rebuilt_binary_runs() {
    assert!(support::is_root(), "the offline rebuild needs a network namespace of its own (root)");
    let rpmbuild = require_tool("rpmbuild", "rpm");
    let unshare = require_tool("unshare", "util-linux");
    let work = tempfile::Builder::new().prefix("icr-srpm-").tempdir().expect("create work dir");
    let out = work.path().join("out");
    let mut srpm = Command::new(workspace().join("packaging/rpm/srpm.sh"));
    srpm.arg(&out).env("PATH", path_with_cargo());
    run_ok(srpm, BUILD_TIMEOUT);
    let names: Vec<String> =
        fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let source_rpm = format!("{PACKAGE}-{VERSION}-1.src.rpm");
    assert_eq!(names, std::slice::from_ref(&source_rpm), "srpm.sh writes exactly the source RPM");
    let source_rpm = out.join(source_rpm);

    let rpm = find_tool("rpm").expect("rpm comes with rpmbuild");
    let mut list = Command::new(&rpm);
    list.arg("-qlp").arg(&source_rpm);
    let list = run_ok(list, Duration::from_secs(60));
    let files: BTreeSet<&str> = list.stdout.lines().collect();
    let expected: BTreeSet<String> = [
        format!("{PACKAGE}-{VERSION}.tar.gz"),
        format!("{PACKAGE}-{VERSION}-vendor.tar.gz"),
        format!("{PACKAGE}.spec"),
    ]
    .into();
    assert_eq!(files, expected.iter().map(String::as_str).collect(), "{list}");

    // The rebuild: no network, no cargo cache; the BuildRequires are checked by an rpm database
    // this Debian machine does not have (--nodeps), the tools are on PATH.
    let (top, cargo_home, home) = (work.path().join("top"), work.path().join("cargo-home"), work.path().join("home"));
    fs::create_dir_all(&cargo_home).unwrap();
    fs::create_dir_all(&home).unwrap();
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .expect("a RUSTUP_HOME or HOME for the toolchain");
    let mut rebuild = Command::new(&unshare);
    rebuild
        .args(["--net", "--"])
        .arg(&rpmbuild)
        .args(["--rebuild", "--nodeps", "--quiet", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg(&source_rpm)
        .env_clear()
        .env("PATH", path_with_cargo())
        .env("HOME", &home)
        .env("CARGO_HOME", &cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env("LANG", "C.UTF-8");
    let rebuilt = run_ok(rebuild, BUILD_TIMEOUT);
    let package =
        top.join(format!("RPMS/{}/{PACKAGE}-{VERSION}-1.{}.rpm", std::env::consts::ARCH, std::env::consts::ARCH));
    assert!(package.is_file(), "no {} after the rebuild:\n{rebuilt}", package.display());
    // cargo keeps its lock files there; a download would have made `registry` or `git`.
    for fetched in ["registry", "git"] {
        assert!(!cargo_home.join(fetched).exists(), "the offline build fetched into CARGO_HOME/{fetched}");
    }

    let mut list = Command::new(&rpm);
    list.arg("-qlp").arg(&package);
    let list = run_ok(list, Duration::from_secs(60));
    let files: BTreeSet<&str> = list.stdout.lines().collect();
    assert!(files.contains("/usr/bin/docker-credential-icr"), "{list}");
    assert!(files.contains("/usr/share/doc/docker-credential-icr/README.md"), "{list}");
    assert!(files.iter().any(|f| f.starts_with("/usr/share/man/man1/docker-credential-icr.1")), "{list}");
    for example in ["credential-provider-config.yaml", "credential-provider-config-node.yaml"] {
        assert!(files.contains(format!("/usr/share/doc/docker-credential-icr/examples/{example}").as_str()), "{list}");
    }
    assert_eq!(files.len(), 5, "{list}");

    // Unpacked as rpm would install it, the binary runs and answers.
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let mut unpack = Command::new("sh");
    unpack.arg("-c").arg(format!(
        "{} - < '{}' | tar -xzf - -C '{}'",
        require_tool("rpm2archive", "rpm").display(),
        package.display(),
        root.display()
    ));
    run_ok(unpack, Duration::from_secs(60));
    let binary = root.join("usr/bin/docker-credential-icr");
    let mut version = Command::new(&binary);
    version.arg("version");
    let version = run_ok(version, Duration::from_secs(10));
    assert!(version.stdout.ends_with(&format!(" {VERSION}\n")), "{version}");
    let mut get = Command::new(&binary);
    get.arg("get").env_clear().env("HOME", &home).env("IBMCLOUD_API_KEY", "rpm-test-key");
    let get = run_bounded(get, Some("us.icr.io\n"), Duration::from_secs(10));
    get.assert_success();
    assert_eq!(
        get.stdout, "{\"ServerURL\":\"us.icr.io\",\"Username\":\"iamapikey\",\"Secret\":\"rpm-test-key\"}\n",
        "{get}"
    );
    eprintln!("packaging: srpm.sh, rpmbuild --rebuild offline {} ... ok", package.display());
}

/// PATH with the directory of the cargo running the tests first (rustup's proxies live there).
fn path_with_cargo() -> String {
    let cargo_dir = Path::new(env!("CARGO")).parent().expect("cargo's directory").display().to_string();
    format!("{cargo_dir}:/usr/local/bin:/usr/bin:/bin")
}

/// The first symbol of each input section of `.text` in a linker map (lld's `-Map` format:
/// VMA, LMA, size and alignment, then after one space the output section, an input section
/// indented by 8 spaces or a symbol indented by 16), in address order.
fn text_sections(map: &str) -> Vec<String> {
    let mut sections: Vec<Option<String>> = Vec::new();
    let mut in_text = false;
    for line in map.lines() {
        let mut rest = line;
        for _ in 0..4 {
            rest = rest.trim_start_matches(' ');
            rest = rest.find(' ').map_or("", |end| &rest[end..]);
        }
        let name = rest.trim_start_matches(' ');
        match (rest.len() - name.len()).saturating_sub(1) {
            0 => in_text = name == ".text",
            8 if in_text => sections.push(None),
            16 if in_text => {
                if let Some(first @ None) = sections.last_mut() {
                    *first = Some(name.to_owned());
                }
            }
            _ => {}
        }
    }
    sections.into_iter().flatten().collect()
}

/// The link settings build.rs applied to this package (the same conditions decide for the
/// release build this file makes).
const LINK_TUNING: &str = env!("DOCKER_CREDENTIAL_ICR_LINK_TUNING");

#[test]
fn release_binary_is_linked_as_build_rs_says() {
    let tuning: Vec<&str> = LINK_TUNING.split(',').filter(|t| !t.is_empty()).collect();
    if cfg!(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")) {
        // Where the numbers in README were measured, all three must hold (the PIE opt-out aside).
        let pie = if tuning.contains(&"pie") { "pie" } else { "no-pie" };
        assert_eq!(tuning, ["static-unwinder", pie, "startup-order"], "build.rs applied only {tuning:?}");
    }
    let binary = release_binary();
    let mut readelf = Command::new(require_tool("readelf", "binutils"));
    readelf.args(["--file-header", "--dynamic"]).arg(binary);
    let elf = run_ok(readelf, Duration::from_secs(60));
    if tuning.contains(&"no-pie") {
        assert!(elf.stdout.contains("EXEC (Executable file)"), "a position-dependent executable:\n{elf}");
    }
    if tuning.contains(&"pie") {
        assert!(elf.stdout.contains("DYN (Position-Independent Executable file)"), "a PIE, as asked:\n{elf}");
    }
    if tuning.contains(&"static-unwinder") {
        let needed: Vec<&str> = elf
            .stdout
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split_once('[').and_then(|(_, r)| r.strip_suffix(']')))
            .collect();
        assert_eq!(needed, ["libc.so.6"], "the unwinder is linked in, so libc is the one shared library:\n{elf}");
    }
    if !tuning.contains(&"startup-order") {
        return;
    }
    let map = fs::read_to_string(link_map()).expect("the release build writes its link map");
    let sections = text_sections(&map);
    assert!(sections.len() > 1000, "{} sections in .text: is {} an lld map?", sections.len(), link_map().display());
    let order = fs::read_to_string(workspace().join("link/startup-order.txt")).expect("read link/startup-order.txt");
    let wanted: Vec<&str> = order.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let built: BTreeSet<&str> = sections.iter().map(String::as_str).collect();
    let present: Vec<&str> = wanted.iter().copied().filter(|s| built.contains(s)).collect();
    assert!(
        present.len() * 10 >= wanted.len() * 9,
        "only {} of the {} functions in link/startup-order.txt are in this build: the toolchain or a \
         dependency changed their symbols; regenerate the file with benches/startup-order.sh",
        present.len(),
        wanted.len()
    );
    let first: Vec<&str> = sections.iter().take(present.len()).map(String::as_str).collect();
    assert_eq!(first, present, "the start of .text should be the hot paths, in the file's order");
    eprintln!("packaging: {} of {} hot-path functions laid out first", present.len(), wanted.len());
}
