//! `configure` on golden config files: docker's own (with `credsStore`), with `auths`, with
//! unknown keys, empty, missing, malformed and read-only. Each run drives the built binary in a
//! fresh HOME with a cleared environment and checks stdout, stderr, the exit status and the
//! bytes of every file involved.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{mode_of as mode, Scenario};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/configure");
const PATH_WARNING: &str = "docker-credential-icr: warning: docker-credential-icr is not on PATH, so docker and podman will not find it: install it into a directory on PATH, such as /usr/local/bin\n";

/// A fresh HOME with the helper on PATH, as `configure` expects to find it.
fn home() -> Scenario {
    let mut s = Scenario::new();
    s.put_helper_on_path();
    s
}

fn docker_config(s: &Scenario) -> PathBuf {
    s.in_home(".docker/config.json")
}

fn containers_auth(s: &Scenario) -> PathBuf {
    s.in_home(".config/containers/auth.json")
}

fn helm_config(s: &Scenario) -> PathBuf {
    s.in_home(".config/helm/registry/config.json")
}

/// Puts a golden file in place as docker's config, with `mode`.
fn install(s: &Scenario, golden: &str, mode: u32) -> Vec<u8> {
    let bytes = fs::read(Path::new(DATA).join(golden)).unwrap();
    fs::create_dir_all(s.in_home(".docker")).unwrap();
    fs::write(docker_config(s), &bytes).unwrap();
    fs::set_permissions(docker_config(s), fs::Permissions::from_mode(mode)).unwrap();
    bytes
}

fn golden(name: &str) -> String {
    fs::read_to_string(Path::new(DATA).join(name)).unwrap()
}

/// A JSON file's meaning, key order included (serde_json is built with `preserve_order`).
fn meaning(text: &str) -> String {
    if text.trim().is_empty() {
        return "{}".to_owned();
    }
    serde_json::to_string(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap()
}

fn added(path: &Path, hosts: &[&str]) -> String {
    let lines: String = hosts.iter().map(|h| format!("  + credHelpers \"{h}\": \"icr\"\n")).collect();
    format!("{}:\n{lines}  written; the previous version is in {}.bak\n", path.display(), path.display())
}

fn created(path: &Path, hosts: &[&str]) -> String {
    let lines: String = hosts.iter().map(|h| format!("  + credHelpers \"{h}\": \"icr\"\n")).collect();
    format!("{}: new file\n{lines}  written\n", path.display())
}

fn unchanged(path: &Path) -> String {
    format!("{}: nothing to change\n", path.display())
}

const PUBLIC: [&str; 14] = [
    "icr.io",
    "au.icr.io",
    "br.icr.io",
    "ca2.icr.io",
    "ca.icr.io",
    "de.icr.io",
    "es.icr.io",
    "fr2.icr.io",
    "uk.icr.io",
    "in.icr.io",
    "in2.icr.io",
    "jp2.icr.io",
    "jp.icr.io",
    "us.icr.io",
];

#[test]
fn configure_in_a_fresh_home_creates_all_three_files_with_every_public_domain() {
    let home = home();
    let run = home.run(&["configure"], "");
    run.status(0);
    assert_eq!(
        run.stdout(),
        created(&docker_config(&home), &PUBLIC)
            + &created(&containers_auth(&home), &PUBLIC)
            + &created(&helm_config(&home), &PUBLIC),
        "{run}"
    );
    assert_eq!(run.stderr(), "", "{run}");
    let helpers: String = PUBLIC.iter().map(|h| format!("\t\t\"{h}\": \"icr\"")).collect::<Vec<_>>().join(",\n");
    let expected = format!("{{\n\t\"credHelpers\": {{\n{helpers}\n\t}}\n}}\n");
    for path in [docker_config(&home), containers_auth(&home), helm_config(&home)] {
        assert_eq!(fs::read_to_string(&path).unwrap(), expected, "{}", path.display());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        assert!(!path.with_extension("json.bak").exists(), "no backup of a file that did not exist");
    }

    let again = home.run(&["configure"], "");
    again.status(0);
    assert_eq!(
        again.stdout(),
        unchanged(&docker_config(&home)) + &unchanged(&containers_auth(&home)) + &unchanged(&helm_config(&home)),
        "{again}"
    );
    assert!(!docker_config(&home).with_extension("json.bak").exists(), "an unchanged file is not rewritten");
}

#[test]
fn configure_all_adds_private_and_legacy_domains_too() {
    let home = home();
    let run = home.run(&["configure", "--all", "--dry-run"], "");
    run.status(0);
    let docker = run.stdout().split(&format!("{}:", containers_auth(&home).display())).next().unwrap().to_owned();
    assert_eq!(docker.lines().filter(|l| l.starts_with("  + ")).count(), 14 * 2 + 5, "{run}");
    for host in ["private.us.icr.io", "registry.ng.bluemix.net", "registry.bluemix.net", "private.ca2.icr.io"] {
        assert!(docker.contains(&format!("  + credHelpers \"{host}\": \"icr\"\n")), "{host}: {run}");
    }
}

/// configure → second run → `--remove` on a golden file: the file gains exactly the entries,
/// keeps its mode, leaves a `.bak` of the original, and `--remove` restores the original meaning.
fn round_trip(
    golden_name: &str,
    file_mode: u32,
    expected_stdout: impl Fn(&Scenario) -> String,
    removed: &[&str],
    remove_notes: &[&str],
) {
    let home = home();
    let original = install(&home, golden_name, file_mode);
    let args = ["configure", "--registries", "us.icr.io,de.icr.io"];

    let run = home.run(&args, "");
    run.status(0);
    assert_eq!(run.stdout(), expected_stdout(&home), "{run}");
    assert_eq!(run.stderr(), "", "{run}");
    let configured_name = golden_name.replace(".json", ".configured.json");
    assert_eq!(fs::read_to_string(docker_config(&home)).unwrap(), golden(&configured_name));
    assert_eq!(mode(&docker_config(&home)), file_mode, "the file keeps its mode");
    let backup = home.in_home(".docker/config.json.bak");
    assert_eq!(fs::read(&backup).unwrap(), original, "the .bak holds the previous content");
    assert_eq!(mode(&backup), file_mode, "the .bak keeps the previous mode");

    let again = home.run(&args, "");
    again.status(0);
    // The notes still hold, so they are repeated.
    let notes: String = run.stdout().lines().filter(|l| l.starts_with("  note: ")).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        again.stdout(),
        unchanged(&docker_config(&home))
            + &notes
            + &unchanged(&containers_auth(&home))
            + &unchanged(&helm_config(&home)),
        "{again}"
    );
    assert_eq!(
        fs::read_to_string(docker_config(&home)).unwrap(),
        golden(&configured_name),
        "a second run changes nothing"
    );

    let remove = home.run(&["configure", "--remove", "--registries", "us.icr.io,de.icr.io"], "");
    remove.status(0);
    let mut lines: String = removed.iter().map(|h| format!("  - credHelpers \"{h}\": \"icr\"\n")).collect();
    lines.extend(remove_notes.iter().map(|n| format!("  note: {n}\n")));
    let docker = docker_config(&home).display().to_string();
    let containers = containers_auth(&home).display().to_string();
    let helm = helm_config(&home).display().to_string();
    assert_eq!(
        remove.stdout(),
        format!(
            "{docker}:\n{lines}  written; the previous version is in {docker}.bak\n{containers}:\n  - credHelpers \"us.icr.io\": \"icr\"\n  - credHelpers \"de.icr.io\": \"icr\"\n  written; the previous version is in {containers}.bak\n{helm}:\n  - credHelpers \"us.icr.io\": \"icr\"\n  - credHelpers \"de.icr.io\": \"icr\"\n  written; the previous version is in {helm}.bak\n"
        ),
        "{remove}"
    );
    let restored = fs::read_to_string(docker_config(&home)).unwrap();
    assert_eq!(meaning(&restored), meaning(std::str::from_utf8(&original).unwrap()), "{restored}");
    assert_eq!(mode(&docker_config(&home)), file_mode);
    assert_eq!(fs::read_to_string(containers_auth(&home)).unwrap(), "{}\n");
    assert_eq!(fs::read_to_string(helm_config(&home)).unwrap(), "{}\n");
}

#[test]
fn docker_config_with_creds_store_keeps_it_and_round_trips() {
    round_trip(
        "credsstore.json",
        0o644,
        |h| {
            added(&docker_config(h), &["us.icr.io", "de.icr.io"])
                + &created(&containers_auth(h), &["us.icr.io", "de.icr.io"])
                + &created(&helm_config(h), &["us.icr.io", "de.icr.io"])
        },
        &["us.icr.io", "de.icr.io"],
        &[],
    );
}

#[test]
fn auths_entry_for_an_icr_host_is_reported_with_a_hint_and_kept() {
    // jp.icr.io already names icr and is not among the hosts: it stays through the round trip.
    round_trip(
        "auths.json",
        0o600,
        |h| {
            let docker = docker_config(h).display().to_string();
            format!(
                "{docker}:\n  + credHelpers \"us.icr.io\": \"icr\"\n  + credHelpers \"de.icr.io\": \"icr\"\n  note: \"auths\" holds a login for us.icr.io (left by a `docker login` without the helper): docker now asks docker-credential-icr instead, but that credential is still in the file in plain text; delete the \"us.icr.io\" entry under \"auths\" in {docker} to get rid of it\n  written; the previous version is in {docker}.bak\n"
            ) + &created(&containers_auth(h), &["us.icr.io", "de.icr.io"])
                + &created(&helm_config(h), &["us.icr.io", "de.icr.io"])
        },
        &["us.icr.io", "de.icr.io"],
        &[],
    );
}

#[test]
fn unknown_keys_order_and_another_helper_are_preserved() {
    round_trip(
        "unknown-keys.json",
        0o640,
        |h| {
            let docker = docker_config(h).display().to_string();
            format!(
                "{docker}:\n  + credHelpers \"de.icr.io\": \"icr\"\n  note: credHelpers sends us.icr.io to \"other-helper\", not to icr: left as it is (remove that entry to use docker-credential-icr for it)\n  written; the previous version is in {docker}.bak\n"
            ) + &created(&containers_auth(h), &["us.icr.io", "de.icr.io"])
                + &created(&helm_config(h), &["us.icr.io", "de.icr.io"])
        },
        &["de.icr.io"],
        &["credHelpers sends us.icr.io to \"other-helper\", not to icr: left as it is"],
    );
}

#[test]
fn empty_docker_config_is_read_as_an_empty_object() {
    round_trip(
        "empty.json",
        0o644,
        |h| {
            added(&docker_config(h), &["us.icr.io", "de.icr.io"])
                + &created(&containers_auth(h), &["us.icr.io", "de.icr.io"])
                + &created(&helm_config(h), &["us.icr.io", "de.icr.io"])
        },
        &["us.icr.io", "de.icr.io"],
        &[],
    );
}

#[test]
fn helms_registry_config_after_a_plain_helm_registry_login_is_wired_and_its_login_reported() {
    // What `helm registry login us.icr.io` leaves without the helper: the key in base64, written
    // the way helm (oras-go) writes the file, tab-indented without a final newline.
    let home = home();
    let original = fs::read(Path::new(DATA).join("helm-registry.json")).unwrap();
    fs::create_dir_all(helm_config(&home).parent().unwrap()).unwrap();
    fs::write(helm_config(&home), &original).unwrap();
    fs::set_permissions(helm_config(&home), fs::Permissions::from_mode(0o644)).unwrap();
    let run = home.run(&["configure", "--registries", "us.icr.io,de.icr.io"], "");
    run.status(0);
    let helm = helm_config(&home).display().to_string();
    assert!(
        run.stdout().ends_with(&format!(
            "{helm}:\n  + credHelpers \"us.icr.io\": \"icr\"\n  + credHelpers \"de.icr.io\": \"icr\"\n  note: \"auths\" holds a login for us.icr.io (left by a `helm registry login` without the helper): helm now asks docker-credential-icr instead, but that credential is still in the file in plain text; delete the \"us.icr.io\" entry under \"auths\" in {helm} to get rid of it\n  written; the previous version is in {helm}.bak\n"
        )),
        "{run}"
    );
    assert_eq!(fs::read_to_string(helm_config(&home)).unwrap(), golden("helm-registry.configured.json"));
    assert_eq!(mode(&helm_config(&home)), 0o644, "the file keeps its mode");
    assert_eq!(fs::read(format!("{helm}.bak")).unwrap(), original);
    let remove = home.run(&["configure", "--remove", "--registries", "us.icr.io,de.icr.io"], "");
    remove.status(0);
    assert_eq!(
        meaning(&fs::read_to_string(helm_config(&home)).unwrap()),
        meaning(std::str::from_utf8(&original).unwrap())
    );
}

#[test]
fn remove_with_missing_files_creates_nothing() {
    let home = home();
    let run = home.run(&["configure", "--remove"], "");
    run.status(0);
    assert_eq!(
        run.stdout(),
        unchanged(&docker_config(&home)) + &unchanged(&containers_auth(&home)) + &unchanged(&helm_config(&home)),
        "{run}"
    );
    assert!(!docker_config(&home).exists() && !containers_auth(&home).exists() && !helm_config(&home).exists());
}

/// `configure` exits 1 with one line, "<docker config> <why>; nothing was written", and leaves
/// the docker config byte for byte as `original`.
#[track_caller]
fn assert_configure_refuses(home: &Scenario, original: &[u8], why: &str) {
    let run = home.run(&["configure"], "");
    run.status(1);
    assert_eq!(run.stdout(), "", "{run}");
    let expected =
        format!("docker-credential-icr: error: {} {why}; nothing was written\n", docker_config(home).display());
    assert_eq!(run.stderr(), expected, "{run}");
    assert_eq!(fs::read(docker_config(home)).unwrap(), original);
}

#[test]
fn malformed_config_is_never_overwritten_and_nothing_else_is_written() {
    let home = home();
    let original = install(&home, "malformed.json", 0o600);
    assert_configure_refuses(
        &home,
        &original,
        "is not valid JSON (EOF while parsing a value at line 5 column 0): fix it or move it aside",
    );
    assert!(!home.in_home(".docker/config.json.bak").exists());
    assert!(!containers_auth(&home).exists(), "no file is written when one of them is malformed");
    assert!(!helm_config(&home).exists(), "no file is written when one of them is malformed");
}

#[test]
fn read_only_config_is_left_alone_with_a_clear_error() {
    let home = home();
    let original = install(&home, "credsstore.json", 0o444);
    assert_configure_refuses(
        &home,
        &original,
        "is read-only: make it writable to configure it (or see the change with --dry-run)",
    );
    assert_eq!(mode(&docker_config(&home)), 0o444);
    assert!(!containers_auth(&home).exists() && !helm_config(&home).exists());
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let home = home();
    let original = install(&home, "credsstore.json", 0o644);
    let run = home.run(&["configure", "--dry-run", "--registries=us.icr.io"], "");
    run.status(0);
    assert_eq!(
        run.stdout(),
        format!(
            "{}:\n  + credHelpers \"us.icr.io\": \"icr\"\n  dry run: nothing written\n{}: new file\n  + credHelpers \"us.icr.io\": \"icr\"\n  dry run: nothing written\n{}: new file\n  + credHelpers \"us.icr.io\": \"icr\"\n  dry run: nothing written\n",
            docker_config(&home).display(),
            containers_auth(&home).display(),
            helm_config(&home).display()
        ),
        "{run}"
    );
    assert_eq!(fs::read(docker_config(&home)).unwrap(), original);
    assert!(!home.in_home(".docker/config.json.bak").exists() && !containers_auth(&home).exists());
    assert!(!helm_config(&home).exists());
}

#[test]
fn docker_config_registry_auth_file_and_helm_variables_choose_the_files() {
    let home = home();
    let run = home
        .cmd(&["configure", "--registries", "jp.icr.io"])
        .env("DOCKER_CONFIG", home.in_home("dc"))
        .env("REGISTRY_AUTH_FILE", home.in_home("auth/file.json"))
        .env("HELM_REGISTRY_CONFIG", home.in_home("helm-registry.json"))
        .run();
    run.status(0);
    let (docker, containers, helm) =
        (home.in_home("dc/config.json"), home.in_home("auth/file.json"), home.in_home("helm-registry.json"));
    assert_eq!(
        run.stdout(),
        created(&docker, &["jp.icr.io"]) + &created(&containers, &["jp.icr.io"]) + &created(&helm, &["jp.icr.io"]),
        "{run}"
    );
    assert!(!docker_config(&home).exists() && !containers_auth(&home).exists() && !helm_config(&home).exists());
    // helm's own directory variable, and the flag, as helm's helmpath has them.
    let run = home
        .cmd(&["configure", "--registries", "jp.icr.io", "--dry-run"])
        .env("HELM_CONFIG_HOME", home.in_home("helm-home"))
        .run();
    assert!(
        run.stdout().contains(&format!("{}: new file\n", home.in_home("helm-home/registry/config.json").display())),
        "{run}"
    );
    let run = home
        .cmd(&["configure", "--registries", "jp.icr.io", "--dry-run", "--helm-config", "/tmp/elsewhere/helm.json"])
        .env("HELM_REGISTRY_CONFIG", home.in_home("helm-registry.json"))
        .run();
    assert!(run.stdout().contains("/tmp/elsewhere/helm.json: new file\n"), "{run}");
}

#[test]
fn one_file_named_twice_is_edited_once() {
    let home = home();
    let run = home
        .cmd(&["configure", "--registries", "jp.icr.io"])
        .env("REGISTRY_AUTH_FILE", docker_config(&home))
        .env("HELM_REGISTRY_CONFIG", docker_config(&home))
        .run();
    run.status(0);
    assert_eq!(run.stdout(), created(&docker_config(&home), &["jp.icr.io"]), "{run}");
}

#[test]
fn a_symlinked_config_stays_a_symlink() {
    let home = home();
    fs::create_dir_all(home.in_home("dotfiles")).unwrap();
    fs::write(home.in_home("dotfiles/docker.json"), "{}").unwrap();
    fs::create_dir_all(home.in_home(".docker")).unwrap();
    symlink(home.in_home("dotfiles/docker.json"), docker_config(&home)).unwrap();
    let run = home.run(&["configure", "--registries", "us.icr.io", "--containers-auth", "/dev/null/never"], "");
    // /dev/null/never cannot be read: nothing is written, not even the docker file.
    run.status(1);
    assert_eq!(fs::read_to_string(home.in_home("dotfiles/docker.json")).unwrap(), "{}");
    let run = home.run(&["configure", "--registries", "us.icr.io"], "");
    run.status(0);
    assert!(fs::symlink_metadata(docker_config(&home)).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_to_string(home.in_home("dotfiles/docker.json")).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"us.icr.io\": \"icr\"\n\t}\n}"
    );
}

#[test]
fn configure_warns_when_the_binary_is_not_on_path() {
    let home = home();
    let run = home.cmd(&["configure", "--dry-run"]).env("PATH", "/usr/bin:/bin").run();
    run.status(0);
    assert_eq!(run.stderr(), PATH_WARNING, "{run}");
}

#[test]
fn a_host_the_helper_does_not_serve_is_configured_with_a_warning() {
    let home = home();
    let run = home.run(&["configure", "--registries", "mirror.example:5000", "--dry-run"], "");
    run.status(0);
    assert_eq!(
        run.stderr(),
        format!(
            "docker-credential-icr: warning: mirror.example:5000 is not an IBM Cloud Container Registry host and is not named in {}: `get` answers not-found for it until it is added under \"registries\" there\n",
            home.in_home(".config/docker-credential-icr/config.json").display()
        ),
        "{run}"
    );
    assert!(run.stdout().contains("  + credHelpers \"mirror.example:5000\": \"icr\"\n"), "{run}");
}

#[test]
fn usage_errors_exit_2() {
    let home = home();
    for (args, message) in [
        (vec!["configure", "--frobnicate"], "configure: unknown argument `--frobnicate`"),
        (vec!["configure", "--registries"], "configure: --registries needs a value"),
        (
            vec!["configure", "--all", "--registries", "us.icr.io"],
            "configure: --all and --registries exclude each other",
        ),
        (
            vec!["configure", "--registries", "https://us.icr.io@evil.example"],
            "configure: --registries: `https://us.icr.io@evil.example`: the server URL is not a valid registry address",
        ),
    ] {
        let run = home.run(&args, "");
        run.status(2);
        assert_eq!(run.stdout(), "", "{run}");
        assert_eq!(
            run.stderr(),
            format!("docker-credential-icr: error: {message} (see `docker-credential-icr configure --help`)\n"),
            "{run}"
        );
    }
    assert!(!docker_config(&home).exists());
}

#[test]
fn protocol_actions_still_take_exactly_one_argument() {
    let home = home();
    let run = home.run(&["get", "extra"], "");
    run.status(1);
    assert_eq!(run.stdout(), "`get` takes no arguments after the action (see --help)\n");
}
