//! `configure --kubelet`: sets a Kubernetes node up in one command. It installs this binary into
//! the kubelet's image credential provider directory (`--image-credential-provider-bin-dir`),
//! writes the `CredentialProviderConfig` shipped in `packaging/kubernetes/` that fits the
//! node's kubelet (1.34 and later: with `tokenAttributes`, for pods' service accounts; 1.26 to
//! 1.33: the node's credentials only, since those kubelets refuse `tokenAttributes.cacheType`),
//! and prints the two kubelet flags that point at them. `--dry-run` shows it, `--remove` undoes
//! it.
//!
//! The config file is the helper's own: one that holds anything else (another provider, a
//! hand-edited copy) is never overwritten nor removed, and the line says what to do instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{option_value, wants_help};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::files::{self, Dir};
use crate::invocation::{shown, Io};

/// Where the README puts the plugin.
pub const DEFAULT_BIN_DIR: &str = "/usr/local/lib/kubelet-credential-providers";
pub const DEFAULT_CONFIG: &str = "/etc/kubernetes/credential-provider-config.yaml";
/// The provider's name in both configs, which must be the binary's name in the bin dir.
const PLUGIN: &str = "docker-credential-icr";
/// The config for kubelets 1.34 and later.
const CONFIG_TOKENS: &str = include_str!("../../packaging/kubernetes/credential-provider-config.yaml");
/// The config for kubelets 1.26 to 1.33.
const CONFIG_NODE: &str = include_str!("../../packaging/kubernetes/credential-provider-config-node.yaml");
/// This binary is a few MiB; anything far larger is not it.
const MAX_BINARY: u64 = 256 << 20;
/// How long `kubelet --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

const USAGE: &str = "\
Usage: docker-credential-icr configure --kubelet [--bin-dir DIR] [--config PATH]
                                       [--kubelet-version VERSION] [--remove] [--dry-run]

Sets up a Kubernetes node: installs docker-credential-icr into the kubelet's image credential
provider directory, writes the CredentialProviderConfig for the node's kubelet (the one on
PATH, asked with `kubelet --version`, or the one named), and prints the two kubelet flags that
point at them.

Options:
  --bin-dir DIR              the kubelet's --image-credential-provider-bin-dir
                             (default /usr/local/lib/kubelet-credential-providers)
  --config PATH              the kubelet's --image-credential-provider-config
                             (default /etc/kubernetes/credential-provider-config.yaml)
  --kubelet-version VERSION  the kubelet's version (1.34, v1.33.2, ...) instead of asking it
  --remove                   take the binary and the config out again
  --dry-run                  print what would change and write nothing
";

#[derive(Debug, Default)]
struct Options {
    bin_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    version: Option<String>,
    remove: bool,
    dry_run: bool,
}

pub fn run(ctx: &Context, io: &mut Io) -> Result<i32> {
    if wants_help(io.args) {
        io.print(USAGE)?;
        return Ok(0);
    }
    let options = parse_args(io.args)?;
    let bin_dir = options.bin_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR));
    let config = options.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let binary = bin_dir.join(PLUGIN);
    let mut report = String::new();
    if options.remove {
        remove(&binary, &config, options.dry_run, &mut report)?;
        io.print(&report)?;
        return Ok(0);
    }
    let (version, from) = match &options.version {
        Some(text) => (parse_version(text).ok_or_else(|| not_a_version("--kubelet-version", text))?, "as given"),
        None => (asked_version(ctx)?, "from `kubelet --version`"),
    };
    let wanted = match version {
        (1, minor) if minor >= 34 => CONFIG_TOKENS,
        (1, minor) if minor >= 26 => CONFIG_NODE,
        _ => {
            return Err(Error::failed(format!(
                "kubelet {}.{} is older than 1.26, whose credential provider API (v1) this setup writes: upgrade the kubelet, or write a v1beta1 config by hand (see README.md, Kubernetes)",
                version.0, version.1
            )))
        }
    };
    let kind = if wanted == CONFIG_TOKENS {
        "with service-account tokens for trusted profiles"
    } else {
        "for the node's credentials only"
    };
    report.push_str(&format!("kubelet {}.{} ({from}): the config {kind}\n", version.0, version.1));

    // Plan both before writing either.
    let own = std::env::current_exe().map_err(|e| Error::failed(format!("cannot find this binary: {e}")))?;
    let own_bytes = read(&own)?.ok_or_else(|| Error::failed(format!("cannot read this binary {}", own.display())))?;
    let binary_change = match read(&binary)? {
        Some(bytes) if bytes == own_bytes => None,
        Some(_) => Some("replace it with this docker-credential-icr"),
        None => Some("install docker-credential-icr"),
    };
    let config_change = match read(&config)? {
        Some(bytes) if bytes == wanted.as_bytes() => None,
        Some(bytes) if is_ours(&bytes) => Some("replace it with the config for this kubelet"),
        Some(_) => {
            return Err(Error::failed(format!(
                "{} exists and is not a config this setup wrote (another provider, or edited by hand): add the docker-credential-icr provider to it by hand, or pass --config for a file of its own (a kubelet 1.34 or later also takes a directory of them); nothing was written",
                config.display()
            )))
        }
        None => Some("write the config"),
    };
    for (path, change, mode, bytes) in
        [(&binary, binary_change, 0o755, own_bytes.as_slice()), (&config, config_change, 0o644, wanted.as_bytes())]
    {
        match change {
            None => report.push_str(&format!("{}: nothing to change\n", path.display())),
            Some(what) if options.dry_run => {
                report.push_str(&format!("{}: {what}\n  dry run: nothing written\n", path.display()))
            }
            Some(what) => {
                write(path, bytes, mode)?;
                report.push_str(&format!("{}: {what}\n  written\n", path.display()));
            }
        }
    }
    report.push_str(&format!(
        "add to the kubelet's flags, then restart it:\n  --image-credential-provider-config={}\n  --image-credential-provider-bin-dir={}\n",
        config.display(),
        bin_dir.display()
    ));
    report
        .push_str("the node's own credentials, if any, go in /etc/docker-credential-icr/config.json (root's, 0600)\n");
    io.print(&report)?;
    Ok(0)
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if let Some(value) = option_value("--bin-dir", arg, &mut rest) {
            options.bin_dir = Some(absolute("--bin-dir", value?)?);
        } else if let Some(value) = option_value("--config", arg, &mut rest) {
            options.config = Some(absolute("--config", value?)?);
        } else if let Some(value) = option_value("--kubelet-version", arg, &mut rest) {
            options.version = Some(value?.to_owned());
        } else {
            match arg.as_str() {
                "--kubelet" => {}
                "--remove" => options.remove = true,
                "--dry-run" => options.dry_run = true,
                other => return Err(Error::input(format!("unknown argument `{}` with --kubelet", shown(other)))),
            }
        }
    }
    Ok(options)
}

/// The kubelet takes absolute paths for both flags; so does this.
fn absolute(option: &str, value: &str) -> Result<PathBuf> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(Error::input(format!("{option} must be an absolute path, as the kubelet's flag is")));
    }
    Ok(path)
}

/// `1.34`, `v1.33.2`, `Kubernetes v1.34.1` → (1, 34).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    let text = text.strip_prefix("Kubernetes ").unwrap_or(text);
    let text = text.strip_prefix('v').unwrap_or(text);
    let mut parts = text.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn not_a_version(what: &str, text: &str) -> Error {
    Error::input(format!("{what}: `{}` is not a Kubernetes version such as 1.34", shown(text)))
}

/// `kubelet --version`, of the kubelet on PATH, within a bound.
fn asked_version(ctx: &Context) -> Result<(u32, u32)> {
    let path = ctx.env.path("PATH").unwrap_or_default();
    let kubelet =
        std::env::split_paths(&path).map(|dir| dir.join("kubelet")).find(|candidate| candidate.is_file()).ok_or_else(
            || Error::failed("no kubelet on PATH to ask its version: pass --kubelet-version (for example 1.34)"),
        )?;
    let mut child = Command::new(&kubelet)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::failed(format!("cannot run {} --version: {e}", kubelet.display())))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < VERSION_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::failed(format!(
                    "{} --version did not answer within {} s: pass --kubelet-version",
                    kubelet.display(),
                    VERSION_TIMEOUT.as_secs()
                )));
            }
        }
    }
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.by_ref().take(4096).read_to_string(&mut text);
    }
    parse_version(&text).ok_or_else(|| {
        Error::failed(format!("{} --version printed no version this reads: pass --kubelet-version", kubelet.display()))
    })
}

/// Whether a config is one of the two this setup writes.
fn is_ours(bytes: &[u8]) -> bool {
    bytes == CONFIG_TOKENS.as_bytes() || bytes == CONFIG_NODE.as_bytes()
}

fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    files::read_limited(path, MAX_BINARY, true)
        .map_err(|e| Error::failed(format!("cannot read {}: {e}", path.display())))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let how = files::Writing { mode, dir: Dir::Chosen, owner: None, locked: false };
    files::write_atomic(path, bytes, how).map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))
}

fn remove(binary: &Path, config: &Path, dry_run: bool, report: &mut String) -> Result<()> {
    let config_bytes = read(config)?;
    if config_bytes.as_deref().is_some_and(|b| !is_ours(b)) {
        return Err(Error::failed(format!(
            "{} is not a config this setup wrote: take the docker-credential-icr provider out of it by hand; nothing was removed",
            config.display()
        )));
    }
    for (path, there) in [(config, config_bytes.is_some()), (binary, binary.exists())] {
        match (there, dry_run) {
            (false, _) => report.push_str(&format!("{}: nothing to remove\n", path.display())),
            (true, true) => report.push_str(&format!("{}: remove it\n  dry run: nothing removed\n", path.display())),
            (true, false) => {
                std::fs::remove_file(path)
                    .map_err(|e| Error::failed(format!("cannot remove {}: {e}", path.display())))?;
                report.push_str(&format!("{}: removed\n", path.display()));
            }
        }
    }
    report.push_str("take --image-credential-provider-config and --image-credential-provider-bin-dir out of the kubelet's flags, then restart it\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_kubectl_and_kubelet_print_them() {
        assert_eq!(parse_version("1.34"), Some((1, 34)));
        assert_eq!(parse_version("v1.33.2"), Some((1, 33)));
        assert_eq!(parse_version("Kubernetes v1.34.1\n"), Some((1, 34)));
        assert_eq!(parse_version("v1.30.0-eks-1234"), Some((1, 30)));
        assert_eq!(parse_version("latest"), None);
        assert_eq!(parse_version("1"), None);
    }

    #[test]
    fn the_two_configs_name_the_plugin_as_the_binary_is_named() {
        for config in [CONFIG_TOKENS, CONFIG_NODE] {
            assert!(config.contains(&format!("  - name: {PLUGIN}\n")), "{config}");
        }
        assert!(CONFIG_TOKENS.contains("tokenAttributes:") && !CONFIG_NODE.contains("tokenAttributes:"));
    }
}
