//! `configure --kubelet` on golden outputs: a node set up in one command (the binary into the
//! kubelet's provider directory, the shipped `CredentialProviderConfig` for the kubelet found or
//! named), a second run that changes nothing, another kubelet version, `--dry-run`, `--remove`,
//! and what it refuses: a config file it did not write, a kubelet too old for the v1 API, a
//! relative path.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{mode_of as mode, Scenario, BIN};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/configure");
const TOKENS_CONFIG: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/kubernetes/credential-provider-config.yaml"));
const NODE_CONFIG: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/kubernetes/credential-provider-config-node.yaml"));

struct Node {
    s: Scenario,
    bin_dir: PathBuf,
    config: PathBuf,
}

fn node() -> Node {
    let s = Scenario::new();
    let bin_dir = s.root().join("node/usr/local/lib/kubelet-credential-providers");
    let config = s.root().join("node/etc/kubernetes/credential-provider-config.yaml");
    Node { s, bin_dir, config }
}

impl Node {
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> = ["configure", "--kubelet", "--bin-dir", self.bin_dir.to_str().unwrap()]
            .into_iter()
            .chain(["--config", self.config.to_str().unwrap()])
            .map(str::to_owned)
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn run(&self, extra: &[&str]) -> common::Output {
        let args = self.args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.s.run(&args, "")
    }

    fn golden(&self, name: &str) -> String {
        fs::read_to_string(Path::new(DATA).join(name))
            .unwrap()
            .replace("{BIN_DIR}", self.bin_dir.to_str().unwrap())
            .replace("{CONFIG}", self.config.to_str().unwrap())
    }

    fn plugin(&self) -> PathBuf {
        self.bin_dir.join("docker-credential-icr")
    }
}

#[test]
fn a_node_is_set_up_in_one_command_and_a_second_run_changes_nothing() {
    let node = node();
    let run = node.run(&["--kubelet-version", "1.34"]);
    run.expect(0, &node.golden("kubelet-install-1.34.txt"), "");
    assert_eq!(fs::read(node.plugin()).unwrap(), fs::read(BIN).unwrap(), "the binary itself is installed");
    assert_eq!(mode(&node.plugin()), 0o755);
    assert_eq!(fs::read_to_string(&node.config).unwrap(), TOKENS_CONFIG, "the shipped config, byte for byte");
    assert_eq!(mode(&node.config), 0o644);
    // The installed plugin answers the kubelet.
    let request = r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"quay.io/x/y"}"#;
    let answer = node.s.program(node.plugin().to_str().unwrap(), &["kubelet"]).stdin(request).run();
    answer.status(0);
    node.run(&["--kubelet-version", "v1.34.2"]).expect(0, &node.golden("kubelet-again-1.34.txt"), "");
}

#[test]
fn the_kubelet_on_path_is_asked_its_version_and_an_older_one_gets_the_node_config() {
    let node = node();
    node.run(&["--kubelet-version", "1.34"]).status(0);
    let path_dir = node.s.root().join("path");
    fs::create_dir_all(&path_dir).unwrap();
    let kubelet = path_dir.join("kubelet");
    fs::write(&kubelet, "#!/bin/sh\n[ \"$1\" = --version ] && echo 'Kubernetes v1.33.4'\n").unwrap();
    fs::set_permissions(&kubelet, fs::Permissions::from_mode(0o755)).unwrap();
    let args = node.args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = node.s.cmd(&args).env("PATH", format!("{}:/usr/bin:/bin", path_dir.display())).run();
    run.expect(0, &node.golden("kubelet-downgrade-1.33-asked.txt"), "");
    assert_eq!(fs::read_to_string(&node.config).unwrap(), NODE_CONFIG);
    // No kubelet to ask and none named: said, nothing written.
    let fresh = self::node();
    let args = fresh.args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fresh.s.cmd(&args).env("PATH", "/usr/bin:/bin").run().expect(
        1,
        "",
        "docker-credential-icr: error: no kubelet on PATH to ask its version: pass --kubelet-version (for example 1.34)\n",
    );
    assert!(!fresh.plugin().exists() && !fresh.config.exists());
}

#[test]
fn dry_run_writes_nothing_and_remove_takes_both_out() {
    let node = node();
    let run = node.run(&["--kubelet-version", "1.30", "--dry-run"]);
    run.status(0);
    assert!(run.stdout().contains("  dry run: nothing written\n"), "{run}");
    assert!(!node.plugin().exists() && !node.config.exists() && !node.bin_dir.exists());
    node.run(&["--kubelet-version", "1.30"]).status(0);
    assert_eq!(fs::read_to_string(&node.config).unwrap(), NODE_CONFIG);
    node.run(&["--remove", "--dry-run"]).status(0);
    assert!(node.plugin().exists() && node.config.exists());
    node.run(&["--remove"]).expect(0, &node.golden("kubelet-remove.txt"), "");
    assert!(!node.plugin().exists() && !node.config.exists());
    let again = node.run(&["--remove"]);
    again.status(0);
    assert!(again.stdout().contains(": nothing to remove\n"), "{again}");
}

#[test]
fn a_config_it_did_not_write_is_never_replaced_nor_removed() {
    let node = node();
    fs::create_dir_all(node.config.parent().unwrap()).unwrap();
    let theirs = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: ecr-credential-provider\n";
    fs::write(&node.config, theirs).unwrap();
    let run = node.run(&["--kubelet-version", "1.34"]);
    run.status(1);
    assert!(run.stderr().contains("is not a config this setup wrote"), "{run}");
    assert!(run.stderr().ends_with("; nothing was written\n"), "{run}");
    assert_eq!(fs::read_to_string(&node.config).unwrap(), theirs);
    assert!(!node.plugin().exists(), "nothing was written, not even the binary");
    node.run(&["--remove"]).status(1);
    assert_eq!(fs::read_to_string(&node.config).unwrap(), theirs);
}

#[test]
fn old_kubelets_bad_versions_and_relative_paths_are_refused() {
    let node = node();
    let run = node.run(&["--kubelet-version", "1.25"]);
    run.status(1);
    assert!(run.stderr().contains("kubelet 1.25 is older than 1.26"), "{run}");
    let run = node.run(&["--kubelet-version", "latest"]);
    run.status(2);
    assert!(run.stderr().contains("--kubelet-version: `latest` is not a Kubernetes version such as 1.34"), "{run}");
    let run = node.s.run(&["configure", "--kubelet", "--bin-dir", "relative/dir", "--kubelet-version", "1.34"], "");
    run.status(2);
    assert!(run.stderr().contains("--bin-dir must be an absolute path"), "{run}");
    let run = node.s.run(&["configure", "--kubelet", "--help"], "");
    run.status(0);
    assert!(run.stdout().starts_with("Usage: docker-credential-icr configure --kubelet"), "{run}");
    assert!(!node.plugin().exists() && !node.config.exists());
}
