//! `configure`: adds (or, with `--remove`, takes out) the `credHelpers` entries that send ICR
//! hosts to this helper, in docker's `config.json`, in the containers auth file (podman, skopeo,
//! buildah) and in helm's registry config (helm 3.8 and later keep their own file, in docker's
//! format; without the entries there, `helm registry login` writes the key into it, or picks a
//! desktop keychain that a headless machine cannot open).
//!
//! These files belong to docker, podman and helm, not to us, so the edit is as small as it can be:
//! the file is parsed into a `serde_json::Value` whose objects keep their key order
//! (`preserve_order`), only `credHelpers` entries naming `icr` are added or removed, and
//! everything else — `auths`, `credsStore`, other helpers, keys we do not know — goes back as it
//! was. A file that does not parse is never overwritten. A file that would not change is not
//! written at all, so a second run changes nothing. Otherwise the previous content is kept in
//! `<file>.bak` and the new one replaces it atomically, both with the file's own mode.
//!
//! No lock is taken: docker and podman do not take one either, so it would protect nothing and
//! would leave a stray lock file in their directories.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{option_value, wants_help};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::files::{self, Dir};
use crate::invocation::{shown, Io};
use crate::registry::{self, REGIONS};
use crate::resolve;
use crate::sys::{self, Owner};

/// The name docker turns into `docker-credential-icr`.
const HELPER: &str = "icr";
/// docker's and podman's files are small; anything larger is not one of them.
const MAX_FILE: u64 = 4 << 20;
/// The mode docker and podman give a config file they create.
const NEW_FILE_MODE: u32 = 0o600;

const USAGE: &str = "\
Usage: docker-credential-icr configure [--registries HOST,HOST | --all] [--docker-config PATH]
                                       [--containers-auth PATH] [--helm-config PATH]
                                       [--remove] [--dry-run]
       docker-credential-icr configure --kubelet [--bin-dir DIR] [--config PATH]
                                       [--kubelet-version VERSION] [--remove] [--dry-run]

Adds \"credHelpers\" entries that send ICR hosts to docker-credential-icr, in docker's config
($DOCKER_CONFIG/config.json, else ~/.docker/config.json), in the containers auth file
($REGISTRY_AUTH_FILE, else ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json) and in helm's
registry config ($HELM_REGISTRY_CONFIG, else $HELM_CONFIG_HOME/registry/config.json, else
${XDG_CONFIG_HOME:-~/.config}/helm/registry/config.json). Every other entry is kept; the
previous file is kept as <file>.bak; a second run changes nothing.

With --kubelet it sets up a Kubernetes node instead: it installs this binary into the
kubelet's image credential provider directory, writes the CredentialProviderConfig for the
node's kubelet and prints the kubelet flags (see `configure --kubelet --help`).

Options:
  --registries HOST,HOST  these hosts instead of every public ICR domain
  --all                   every ICR domain: public, private and legacy
  --docker-config PATH    docker's config.json (or the directory holding it)
  --containers-auth PATH  the containers auth file (podman, skopeo, buildah)
  --helm-config PATH      helm's registry config.json
  --remove                take the entries out again
  --dry-run               print what would change and write nothing
";

#[derive(Debug, Default)]
struct Options {
    registries: Option<Vec<String>>,
    all: bool,
    docker_config: Option<PathBuf>,
    containers_auth: Option<PathBuf>,
    helm_config: Option<PathBuf>,
    remove: bool,
    dry_run: bool,
}

pub fn run(ctx: &Context, io: &mut Io) -> Result<i32> {
    if io.args.iter().any(|a| a == "--kubelet") {
        return super::kubelet_setup::run(ctx, io);
    }
    if wants_help(io.args) {
        io.print(USAGE)?;
        return Ok(0);
    }
    let options = parse_args(io.args)?;
    let hosts = hosts(ctx, &options)?;
    let candidates = [
        (docker_config_path(ctx, &options)?, Client::DOCKER),
        (containers_auth_path(ctx, &options)?, Client::CONTAINERS),
        (helm_config_path(ctx, &options)?, Client::HELM),
    ];
    // REGISTRY_AUTH_FILE or HELM_REGISTRY_CONFIG often points at docker's own file: edit it once.
    let mut targets: Vec<(PathBuf, Client)> = Vec::new();
    for (path, client) in candidates {
        if !targets.iter().any(|(t, _)| same_file(t, &path)) {
            targets.push((path, client));
        }
    }
    // Plan every file before writing any, so that one malformed file leaves all of them alone.
    let plans = targets
        .iter()
        .map(|(path, client)| plan(ctx, path, *client, &hosts, options.remove))
        .collect::<Result<Vec<_>>>()?;
    if !options.remove {
        warn_if_not_on_path(ctx);
    }
    for plan in &plans {
        let mut report = plan.describe();
        if plan.new_text.is_some() {
            if options.dry_run {
                report.push_str("  dry run: nothing written\n");
            } else {
                report.push_str(&plan.write()?);
            }
        }
        io.print(&report)?;
    }
    Ok(0)
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if let Some(value) = option_value("--registries", arg, &mut rest) {
            let list: Vec<String> =
                value?.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if list.is_empty() {
                return Err(Error::input("--registries needs at least one host"));
            }
            options.registries.get_or_insert_with(Vec::new).extend(list);
        } else if let Some(value) = option_value("--docker-config", arg, &mut rest) {
            options.docker_config = Some(PathBuf::from(value?));
        } else if let Some(value) = option_value("--containers-auth", arg, &mut rest) {
            options.containers_auth = Some(PathBuf::from(value?));
        } else if let Some(value) = option_value("--helm-config", arg, &mut rest) {
            options.helm_config = Some(PathBuf::from(value?));
        } else {
            match arg.as_str() {
                "--all" => options.all = true,
                "--remove" => options.remove = true,
                "--dry-run" => options.dry_run = true,
                other => return Err(Error::input(format!("unknown argument `{}`", shown(other)))),
            }
        }
    }
    if options.all && options.registries.is_some() {
        return Err(Error::input("--all and --registries exclude each other"));
    }
    Ok(options)
}

/// The `credHelpers` keys to add or remove: hosts as docker names them (`us.icr.io`,
/// `mirror.example.com:5000`), without duplicates, in the order given.
fn hosts(ctx: &Context, options: &Options) -> Result<Vec<String>> {
    let mut hosts: Vec<String> = Vec::new();
    match &options.registries {
        None if options.all => hosts.extend(REGIONS.iter().flat_map(|r| r.domains()).map(str::to_owned)),
        None => hosts.extend(REGIONS.iter().map(|r| r.domain.to_owned())),
        Some(list) => {
            for text in list {
                let registry = registry::parse_server_url(text)
                    .map_err(|e| Error::input(format!("--registries: `{}`: {e}", shown(text))))?;
                if !options.remove {
                    match resolve::not_ours(ctx, &registry) {
                        Ok(None) => {}
                        Ok(Some(not_ours)) => ctx.log.warn(format_args!(
                            "{not_ours}: `get` answers not-found for it until it is added under \"registries\" there"
                        )),
                        Err(e) => ctx.log.warn(format_args!("{e}")),
                    }
                }
                let host = registry.to_string();
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
    }
    Ok(hosts)
}

/// `--docker-config` (a file, or a directory holding `config.json`), else
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path(ctx: &Context, options: &Options) -> Result<PathBuf> {
    if let Some(path) = &options.docker_config {
        return Ok(if path.is_dir() { path.join("config.json") } else { path.clone() });
    }
    if let Some(dir) = ctx.env.path("DOCKER_CONFIG") {
        return Ok(dir.join("config.json"));
    }
    let home = ctx.env.home_dir.as_ref().ok_or_else(|| {
        Error::failed("no home directory for docker's config.json: set HOME, DOCKER_CONFIG or --docker-config")
    })?;
    Ok(home.join(".docker").join("config.json"))
}

/// `--containers-auth`, else `$REGISTRY_AUTH_FILE`, else
/// `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`.
fn containers_auth_path(ctx: &Context, options: &Options) -> Result<PathBuf> {
    if let Some(path) = &options.containers_auth {
        return Ok(path.clone());
    }
    if let Some(path) = ctx.env.path("REGISTRY_AUTH_FILE") {
        return Ok(path);
    }
    let dir = ctx.env.config_dir.as_ref().ok_or_else(|| {
        Error::failed(
            "no config directory for the containers auth file: set HOME, REGISTRY_AUTH_FILE or --containers-auth",
        )
    })?;
    Ok(dir.join("containers").join("auth.json"))
}

/// `--helm-config`, else where helm keeps it (helm's `helmpath`): `$HELM_REGISTRY_CONFIG`, else
/// `$HELM_CONFIG_HOME/registry/config.json`, else
/// `${XDG_CONFIG_HOME:-~/.config}/helm/registry/config.json`.
fn helm_config_path(ctx: &Context, options: &Options) -> Result<PathBuf> {
    if let Some(path) = &options.helm_config {
        return Ok(path.clone());
    }
    if let Some(path) = ctx.env.path("HELM_REGISTRY_CONFIG") {
        return Ok(path);
    }
    if let Some(dir) = ctx.env.path("HELM_CONFIG_HOME") {
        return Ok(dir.join("registry").join("config.json"));
    }
    let dir = ctx.env.config_dir.as_ref().ok_or_else(|| {
        Error::failed("no config directory for helm's registry config: set HOME, HELM_REGISTRY_CONFIG or --helm-config")
    })?;
    Ok(dir.join("helm").join("registry").join("config.json"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

/// docker finds `docker-credential-icr` on PATH only; warn when it would not.
fn warn_if_not_on_path(ctx: &Context) {
    let found = ctx.env.path("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join("docker-credential-icr"))
                .is_ok_and(|m| m.is_file() && sys::is_executable(sys::mode(&m)))
        })
    });
    if !found {
        ctx.log.warn(format_args!(
            "docker-credential-icr is not on PATH, so docker and podman will not find it: install it into a directory on PATH, such as /usr/local/bin"
        ));
    }
}

/// Whose file it is, for the notes about plain-text logins in it.
#[derive(Debug, Clone, Copy)]
struct Client {
    /// Who reads the file: "docker", …
    name: &'static str,
    /// What leaves a plain-text login in it.
    login: &'static str,
}

impl Client {
    const DOCKER: Client = Client { name: "docker", login: "docker login" };
    const CONTAINERS: Client = Client { name: "podman", login: "podman login" };
    const HELM: Client = Client { name: "helm", login: "helm registry login" };
}

/// What `configure` will do to one file.
struct Plan {
    /// The file itself, with a symlink resolved (a dotfile manager's link stays a link).
    path: PathBuf,
    /// The previous content, mode and owner, when the file existed.
    original: Option<(Vec<u8>, u32, Owner)>,
    /// Who a file or directory created for it is given to (see [`owner_for_new`]).
    new_owner: Option<Owner>,
    /// The new content; `None` when nothing changes.
    new_text: Option<String>,
    changes: Vec<String>,
    notes: Vec<String>,
}

fn plan(ctx: &Context, path: &Path, client: Client, hosts: &[String], remove: bool) -> Result<Plan> {
    let path = resolve_link(path)?;
    let shown_path = path.display();
    let bytes = files::read_limited(&path, MAX_FILE, true)
        .map_err(|e| Error::failed(format!("cannot read {shown_path}: {e}; nothing was written")))?;
    let original = match bytes {
        Some(bytes) => {
            let metadata = fs::metadata(&path)
                .map_err(|e| Error::failed(format!("cannot read {shown_path}: {e}; nothing was written")))?;
            Some((bytes, sys::mode(&metadata), sys::owner(&metadata)))
        }
        None => None,
    };
    let text = match &original {
        Some((bytes, ..)) => std::str::from_utf8(bytes).map_err(|_| {
            Error::failed(format!("{shown_path} is not UTF-8 text: fix it or move it aside; nothing was written"))
        })?,
        None => "",
    };
    // docker reads an empty file as an empty config; so do we.
    let mut root: Map<String, Value> = if text.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::failed(format!(
                    "{shown_path} is not a JSON object: fix it or move it aside; nothing was written"
                )))
            }
            Err(e) => {
                return Err(Error::failed(format!(
                    "{shown_path} is not valid JSON ({e}): fix it or move it aside; nothing was written"
                )))
            }
        }
    };
    let before = root.clone();
    let (changes, mut notes) = if remove { remove_entries(&mut root, hosts) } else { add_entries(&mut root, hosts) }
        .map_err(|what| Error::failed(format!("{shown_path}: {what}: fix it or move it aside; nothing was written")))?;
    if !remove {
        notes.extend(auths_notes(&root, hosts, &path, client));
    }
    // Edits only add or remove entries, so an equal map is an unchanged file.
    let new_text = if root == before { None } else { Some(render(&root, text)) };
    if new_text.is_some() {
        if let Some((_, mode, _)) = &original {
            if !sys::is_writable(*mode) {
                return Err(Error::failed(format!(
                    "{shown_path} is read-only: make it writable to configure it (or see the change with --dry-run); nothing was written"
                )));
            }
        }
    }
    let new_owner = owner_for_new(ctx, &path);
    Ok(Plan { path, original, new_owner, new_text, changes, notes })
}

/// Who a file `configure` creates belongs to: run as root inside a home that belongs to someone
/// else (`sudo -E`), that home's owner, so that the user can still read their own docker
/// config; otherwise whoever runs it.
fn owner_for_new(ctx: &Context, path: &Path) -> Option<Owner> {
    if sys::effective_uid() != 0 {
        return None;
    }
    let home = ctx.env.home_dir.as_ref()?;
    let owner = sys::owner(&fs::metadata(home).ok()?);
    (owner.uid != 0 && path.starts_with(home)).then_some(owner)
}

/// A symlink is followed to its target, so that the link stays and the target is edited.
fn resolve_link(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)
            .map_err(|e| Error::failed(format!("{} is a symbolic link that cannot be followed: {e}", path.display()))),
        _ => Ok(path.to_owned()),
    }
}

type Edit = std::result::Result<(Vec<String>, Vec<String>), String>;

fn add_entries(root: &mut Map<String, Value>, hosts: &[String]) -> Edit {
    let helpers = root.entry("credHelpers").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(helpers) = helpers else { return Err("\"credHelpers\" is not an object".to_owned()) };
    let (mut changes, mut notes) = (Vec::new(), Vec::new());
    for host in hosts {
        match helpers.get(host) {
            None => {
                helpers.insert(host.clone(), Value::String(HELPER.to_owned()));
                changes.push(format!("+ credHelpers \"{host}\": \"{HELPER}\""));
            }
            Some(Value::String(helper)) if helper == HELPER => {}
            Some(other) => notes.push(format!(
                "credHelpers sends {host} to {other}, not to {HELPER}: left as it is (remove that entry to use docker-credential-icr for it)"
            )),
        }
    }
    if helpers.is_empty() && changes.is_empty() {
        // Nothing was there and nothing was added (no hosts): do not leave an empty object.
        root.shift_remove("credHelpers");
    }
    Ok((changes, notes))
}

fn remove_entries(root: &mut Map<String, Value>, hosts: &[String]) -> Edit {
    let Some(helpers) = root.get_mut("credHelpers") else { return Ok((Vec::new(), Vec::new())) };
    let Value::Object(helpers) = helpers else { return Err("\"credHelpers\" is not an object".to_owned()) };
    let (mut changes, mut notes) = (Vec::new(), Vec::new());
    for host in hosts {
        match helpers.get(host) {
            Some(Value::String(helper)) if helper == HELPER => {
                helpers.shift_remove(host);
                changes.push(format!("- credHelpers \"{host}\": \"{HELPER}\""));
            }
            Some(other) => notes.push(format!("credHelpers sends {host} to {other}, not to {HELPER}: left as it is")),
            None => {}
        }
    }
    if helpers.is_empty() && !changes.is_empty() {
        root.shift_remove("credHelpers");
    }
    Ok((changes, notes))
}

/// An `auths` entry for a host now sent to the helper is a plain-text login (what a
/// `docker login` without a helper leaves): the client stops using it, but it stays in the file.
fn auths_notes(root: &Map<String, Value>, hosts: &[String], path: &Path, client: Client) -> Vec<String> {
    let Some(Value::Object(auths)) = root.get("auths") else { return Vec::new() };
    auths
        .keys()
        .filter(|key| registry::parse_server_url(key).is_ok_and(|r| hosts.contains(&r.to_string())))
        .map(|key| {
            format!(
                "\"auths\" holds a login for {key} (left by a `{}` without the helper): {} now asks docker-credential-icr instead, but that credential is still in the file in plain text; delete the \"{key}\" entry under \"auths\" in {} to get rid of it",
                client.login,
                client.name,
                path.display()
            )
        })
        .collect()
}

/// Pretty JSON indented the way the file was (docker and podman use a tab), ending with a
/// newline if the file did.
fn render(root: &Map<String, Value>, previous: &str) -> String {
    let indent = previous
        .lines()
        .skip(1)
        .map(|line| &line[..line.len() - line.trim_start_matches([' ', '\t']).len()])
        .find(|indent| !indent.is_empty())
        .unwrap_or("\t");
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    root.serialize(&mut serializer).expect("a JSON value always serializes");
    let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
    if previous.is_empty() || previous.ends_with('\n') {
        text.push('\n');
    }
    text
}

impl Plan {
    fn describe(&self) -> String {
        let mut out = format!("{}:", self.path.display());
        match (&self.new_text, &self.original) {
            (None, _) => out.push_str(" nothing to change\n"),
            (Some(_), None) => out.push_str(" new file\n"),
            (Some(_), Some(_)) => out.push('\n'),
        }
        for change in &self.changes {
            out.push_str(&format!("  {change}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        out
    }

    /// Writes the `.bak` and then the file; returns the line that says so.
    fn write(&self) -> Result<String> {
        let Some(text) = &self.new_text else { return Ok(String::new()) };
        let fail = |what: &Path, e: std::io::Error| Error::failed(format!("cannot write {}: {e}", what.display()));
        // docker's own CLI keeps a config file's owner, group and mode when it rewrites one; so
        // does this (only root can give a file away, and only root needs to).
        let writing = |mode, owner: Option<Owner>| files::Writing {
            mode,
            dir: Dir::Chosen,
            owner: owner.filter(|_| sys::effective_uid() == 0),
            locked: false,
        };
        match &self.original {
            Some((bytes, mode, owner)) => {
                let backup = backup_path(&self.path);
                files::write_atomic(&backup, bytes, writing(*mode, Some(*owner))).map_err(|e| fail(&backup, e))?;
                files::write_atomic(&self.path, text.as_bytes(), writing(*mode, Some(*owner)))
                    .map_err(|e| fail(&self.path, e))?;
                Ok(format!("  written; the previous version is in {}\n", backup.display()))
            }
            None => {
                files::write_atomic(&self.path, text.as_bytes(), writing(NEW_FILE_MODE, self.new_owner))
                    .map_err(|e| fail(&self.path, e))?;
                Ok("  written\n".to_owned())
            }
        }
    }
}

fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".bak");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn adding_keeps_other_keys_in_their_order_and_removing_restores_them() {
        let text = "{\n  \"z\": 1,\n  \"credHelpers\": {\"gcr.io\": \"gcloud\"},\n  \"a\": {\"y\": 2, \"b\": 3}\n}\n";
        let mut root = object(text);
        let hosts = vec!["us.icr.io".to_owned()];
        let (changes, notes) = add_entries(&mut root, &hosts).unwrap();
        assert_eq!(changes, ["+ credHelpers \"us.icr.io\": \"icr\""]);
        assert!(notes.is_empty());
        assert_eq!(
            render(&root, text),
            "{\n  \"z\": 1,\n  \"credHelpers\": {\n    \"gcr.io\": \"gcloud\",\n    \"us.icr.io\": \"icr\"\n  },\n  \"a\": {\n    \"y\": 2,\n    \"b\": 3\n  }\n}\n"
        );
        remove_entries(&mut root, &hosts).unwrap();
        assert_eq!(root, object(text));
    }

    #[test]
    fn another_helper_for_the_host_is_left_alone() {
        let mut root = object(r#"{"credHelpers": {"us.icr.io": "other"}}"#);
        let hosts = vec!["us.icr.io".to_owned()];
        let (changes, notes) = add_entries(&mut root, &hosts).unwrap();
        assert!(changes.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
        let (changes, _) = remove_entries(&mut root, &hosts).unwrap();
        assert!(changes.is_empty());
        assert_eq!(root, object(r#"{"credHelpers": {"us.icr.io": "other"}}"#));
    }

    #[test]
    fn indentation_follows_the_file_and_defaults_to_a_tab() {
        let root = object(r#"{"a": 1}"#);
        assert_eq!(render(&root, ""), "{\n\t\"a\": 1\n}\n");
        assert_eq!(render(&root, "{\n    \"a\": 1}"), "{\n    \"a\": 1\n}");
    }
}
