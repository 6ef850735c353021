//! End-to-end: skopeo, configured through an auth file's `credHelpers`, logs in, pushes,
//! inspects and logs out against a real distribution registry on loopback, with the built
//! `docker-credential-icr` answering its `store`, `get` and `erase` calls. The registry's
//! htpasswd holds exactly the credentials the helper should hand out, so a successful push or
//! inspect proves the registry received them.
//!
//! The `harness_*` tests check the harness itself with static `--creds`, no helper involved:
//! among them, that the token-authenticated registry the ICR end-to-end tests use takes only
//! tokens its own service signed for it.

mod common;
mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use support::image::OciImage;
use support::registry::{Listen, Registry};
use support::token_service::TokenService;
use support::{mode_of, write_json, Helper, Output};

/// Pushes `image` to `docker://HOST/<repo>` with static `user:password` credentials, or
/// anonymously; no helper involved.
fn push_with_creds(client: &Helper, registry: &Registry, image: &OciImage, repo: &str, creds: Option<&str>) {
    let dest = format!("docker://{}/{repo}", registry.host());
    let cert_dir = registry.cert_dir().to_str().expect("UTF-8 path");
    let reference = image.reference();
    let mut args = vec!["copy", "--dest-cert-dir", cert_dir];
    if let Some(creds) = creds {
        args.extend(["--dest-creds", creds]);
    }
    args.extend([reference.as_str(), dest.as_str()]);
    client.run_ok("skopeo", &args, None);
}

/// The manifest digest `skopeo inspect` reports, from its JSON output.
fn inspected_digest(stdout: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("skopeo inspect printed no JSON ({e}):\n{stdout}"));
    json["Digest"].as_str().unwrap_or_else(|| panic!("no Digest in skopeo inspect output:\n{stdout}")).to_string()
}

fn is_unauthorized(text: &str) -> bool {
    let text = text.to_lowercase();
    text.contains("unauthorized") || text.contains("authentication required")
}

#[test]
fn harness_registry_serves_pushed_image_to_htpasswd_users_only() {
    support::require_tool("skopeo", "skopeo");
    let client = Helper::new();
    let registry = Registry::with_users(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let image = OciImage::build(&client.home().join("image"), "latest", "hello from e2e\n");
    push_with_creds(&client, &registry, &image, "e2e/hello:1", Some("alice:alice-pw"));

    let target = format!("docker://{}/e2e/hello:1", registry.host());
    let cert_dir = registry.cert_dir().to_str().expect("UTF-8 path");
    let inspect = |creds: Option<&str>| {
        let mut args = vec!["inspect", "--cert-dir", cert_dir];
        if let Some(creds) = creds {
            args.extend(["--creds", creds]);
        }
        args.push(&target);
        client.run("skopeo", &args, None)
    };

    let by_bob = inspect(Some("bob:bob-pw"));
    by_bob.assert_success();
    assert_eq!(inspected_digest(&by_bob.stdout), image.manifest_digest);
    let users = registry.authenticated_users();
    assert!(
        users.contains(&"alice".to_string()) && users.contains(&"bob".to_string()),
        "registry log should name alice and bob as authenticated, got {users:?}:\n{}",
        registry.log()
    );

    let anonymous = inspect(None);
    anonymous.assert_failure();
    assert!(is_unauthorized(&anonymous.all_text()), "{anonymous}");
    let wrong = inspect(Some("bob:not-bobs-pw"));
    wrong.assert_failure();
    assert!(is_unauthorized(&wrong.all_text()), "{wrong}");

    registry.add_user("carol", "carol-pw");
    inspect(Some("carol:carol-pw")).assert_success();
    assert!(registry.authenticated_users().contains(&"carol".to_string()), "{}", registry.log());
}

#[test]
fn harness_anonymous_registry_allows_push_and_pull_without_credentials() {
    support::require_tool("skopeo", "skopeo");
    let client = Helper::new();
    let registry = Registry::anonymous();
    let image = OciImage::build(&client.home().join("image"), "v1", "anonymous\n");
    push_with_creds(&client, &registry, &image, "open/hello:v1", None);
    let target = format!("docker://{}/open/hello:v1", registry.host());
    let cert_dir = registry.cert_dir().to_str().expect("UTF-8 path");
    let inspect = client.run_ok("skopeo", &["inspect", "--cert-dir", cert_dir, &target], None);
    assert_eq!(inspected_digest(&inspect.stdout), image.manifest_digest);
}

/// A fake IAM API key: the registry's htpasswd holds `iamapikey` with exactly this password.
const API_KEY: &str = "e2e-fake-iam-api-key-0123456789abcdefghij";
/// The variable the helper's config names in the `apiKeyEnv` scenarios.
const API_KEY_ENV: &str = "E2E_ICR_API_KEY";

/// A registry that accepts only `iamapikey`/[`API_KEY`], a client HOME whose helper config
/// names that registry with `entry`, and an auth file that sends the registry to the helper.
struct Scenario {
    client: Helper,
    registry: Registry,
    authfile: PathBuf,
    image: OciImage,
}

impl Scenario {
    fn new(entry: serde_json::Value) -> Scenario {
        support::require_tool("skopeo", "skopeo");
        let registry = Registry::with_users(&[("iamapikey", API_KEY)]);
        let client = Helper::new();
        let host = registry.host();
        client.write_config(&json!({ "registries": { host.clone(): entry } }));
        let authfile = client.home().join("auth.json");
        write_json(&authfile, &Scenario::authfile_json(&host));
        let image = OciImage::build(&client.home().join("image"), "latest", "pushed via icr\n");
        Scenario { client, registry, authfile, image }
    }

    fn authfile_json(host: &str) -> serde_json::Value {
        json!({ "credHelpers": { host: "icr" } })
    }

    fn authfile(&self) -> &str {
        self.authfile.to_str().expect("UTF-8 path")
    }

    fn cert_dir(&self) -> &str {
        self.registry.cert_dir().to_str().expect("UTF-8 path")
    }

    fn target(&self) -> String {
        format!("docker://{}/ns/img:e2e", self.registry.host())
    }

    fn login(&self, key: &str) -> Output {
        let host = self.registry.host();
        let args = [
            "login",
            "--authfile",
            self.authfile(),
            "--cert-dir",
            self.cert_dir(),
            "-u",
            "iamapikey",
            "--password-stdin",
            &host,
        ];
        self.client.run("skopeo", &args, Some(&format!("{key}\n")))
    }

    /// Pushes the image with whatever the helper answers for the registry.
    fn push(&self) -> Output {
        let reference = self.image.reference();
        let target = self.target();
        let args =
            ["copy", "--dest-authfile", self.authfile(), "--dest-cert-dir", self.cert_dir(), &reference, &target];
        self.client.run("skopeo", &args, None)
    }

    fn inspect(&self) -> Output {
        let target = self.target();
        let args = ["inspect", "--authfile", self.authfile(), "--cert-dir", self.cert_dir(), &target];
        self.client.run("skopeo", &args, None)
    }

    fn logout(&self) -> Output {
        let host = self.registry.host();
        let args = ["logout", "--authfile", self.authfile(), &host];
        self.client.run("skopeo", &args, None)
    }

    /// Pushes, inspects the pushed manifest, and checks that the registry saw only
    /// `iamapikey` and that the auth file still holds no credentials.
    #[track_caller]
    fn assert_push_and_inspect_as_iamapikey(&self) {
        self.push().assert_success();
        let inspect = self.inspect();
        inspect.assert_success();
        assert_eq!(inspected_digest(&inspect.stdout), self.image.manifest_digest);
        self.assert_only_iamapikey_authenticated();
        self.assert_authfile_holds_no_credentials();
    }

    #[track_caller]
    fn assert_only_iamapikey_authenticated(&self) {
        let users = self.registry.authenticated_users();
        assert!(
            !users.is_empty() && users.iter().all(|u| u == "iamapikey"),
            "the registry should have authenticated iamapikey and no one else, got {users:?}:\n{}",
            self.registry.log()
        );
    }

    /// The auth file holds the `credHelpers` entry and no credentials: no key, no `auths`
    /// entry (skopeo may rewrite it with an empty `auths` object on logout).
    #[track_caller]
    fn assert_authfile_holds_no_credentials(&self) {
        let text = fs::read_to_string(&self.authfile).expect("read auth file");
        assert!(!text.contains(API_KEY), "the auth file holds the key:\n{text}");
        let json: serde_json::Value = serde_json::from_str(&text).expect("auth file is JSON");
        let expected = Scenario::authfile_json(&self.registry.host());
        assert_eq!(json["credHelpers"], expected["credHelpers"], "{text}");
        let no_auths = match &json["auths"] {
            serde_json::Value::Null => true,
            serde_json::Value::Object(auths) => auths.is_empty(),
            _ => false,
        };
        assert!(no_auths, "the auth file should hold no auths entry:\n{text}");
    }
}

#[track_caller]
fn assert_no_crash(output: &Output) {
    let text = output.all_text();
    assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "the helper crashed:\n{output}");
}

#[test]
fn skopeo_login_push_inspect_logout_round_trip_through_the_helper() {
    // The config names the registry without a credential of its own: that makes it a registry
    // the helper serves (so `store` accepts the login), and after logout `get` has nothing.
    let scenario = Scenario::new(json!({}));

    scenario.login(API_KEY).assert_success();
    let credentials = scenario.client.credentials_path();
    assert!(credentials.is_file(), "login should store through the helper");
    assert_eq!(mode_of(&credentials), 0o600, "{}", credentials.display());
    let dir = credentials.parent().expect("credentials dir");
    assert_eq!(mode_of(dir), 0o700, "{}", dir.display());
    let stored = fs::read_to_string(&credentials).expect("read credentials.json");
    assert!(stored.contains(&scenario.registry.host()), "{stored}");
    scenario.assert_authfile_holds_no_credentials();

    scenario.assert_push_and_inspect_as_iamapikey();

    scenario.logout().assert_success();
    let stored = fs::read_to_string(&credentials).unwrap_or_default();
    assert!(!stored.contains(API_KEY), "logout left the key behind:\n{stored}");
    let after_logout = scenario.inspect();
    after_logout.assert_failure();
    assert_no_crash(&after_logout);
    assert!(
        is_unauthorized(&after_logout.all_text()),
        "after logout the registry should refuse the anonymous request:\n{after_logout}"
    );
    scenario.assert_authfile_holds_no_credentials();
}

#[test]
fn skopeo_push_and_inspect_with_key_from_helper_config_and_environment() {
    let mut scenario = Scenario::new(json!({ "apiKeyEnv": API_KEY_ENV }));
    scenario.client.set_env(API_KEY_ENV, API_KEY);

    scenario.assert_push_and_inspect_as_iamapikey();
    assert!(!scenario.client.credentials_path().exists(), "get must not store a login");
}

#[test]
fn skopeo_inspect_with_wrong_key_gets_the_registry_refusal() {
    let mut scenario = Scenario::new(json!({ "apiKeyEnv": API_KEY_ENV }));
    let wrong_key = "e2e-wrong-key-not-in-htpasswd";
    scenario.client.set_env(API_KEY_ENV, wrong_key);
    push_with_creds(
        &scenario.client,
        &scenario.registry,
        &scenario.image,
        "ns/img:e2e",
        Some(&format!("iamapikey:{API_KEY}")),
    );

    let inspect = scenario.inspect();
    inspect.assert_failure();
    assert_no_crash(&inspect);
    assert!(is_unauthorized(&inspect.all_text()), "skopeo should report the registry's refusal:\n{inspect}");
    assert!(!inspect.all_text().contains(wrong_key), "{inspect}");

    // The helper itself answered normally: the key is the registry's to judge.
    let get = scenario.client.run_helper("get", &scenario.registry.host());
    get.assert_success();
    let answer: serde_json::Value = serde_json::from_str(&get.stdout).expect("get prints JSON");
    assert_eq!(answer["Username"], "iamapikey", "{get}");
    assert_eq!(answer["Secret"], wrong_key, "{get}");
}

/// Podman, rootful, with throwaway storage under the client's HOME: nothing touches the
/// machine's own image store.
fn podman(client: &Helper, args: &[&str]) -> Output {
    let root = client.home().join("podman-root");
    let runroot = client.home().join("podman-runroot");
    let (root, runroot) = (root.to_str().expect("UTF-8 path"), runroot.to_str().expect("UTF-8 path"));
    let mut all = vec!["--root", root, "--runroot", runroot, "--storage-driver", "vfs"];
    all.extend(args);
    client.run("podman", &all, None)
}

#[test]
fn fresh_home_wired_by_configure_alone_serves_skopeo_and_podman() {
    support::require_tool("skopeo", "skopeo");
    support::require_tool("podman", "podman");
    let registry = Registry::with_users(&[("iamapikey", API_KEY)]);
    let mut client = Helper::new();
    let host = registry.host();
    // The helper's own config names the loopback registry (it is no ICR host); the clients'
    // files are written by `configure` and nothing else.
    client.write_config(&json!({ "registries": { host.clone(): {} } }));
    let authfile = client.home().join("containers-auth.json");
    client.set_env("REGISTRY_AUTH_FILE", &authfile);
    let configure = client.run_ok(Helper::NAME, &["configure", "--registries", &host], None);
    let docker_config = client.home().join(".docker/config.json");
    let helm_config = client.config_home().join("helm/registry/config.json");
    assert_eq!(
        configure.stdout,
        format!(
            "{}: new file\n  + credHelpers \"{host}\": \"icr\"\n  written\n{}: new file\n  + credHelpers \"{host}\": \"icr\"\n  written\n{}: new file\n  + credHelpers \"{host}\": \"icr\"\n  written\n",
            docker_config.display(),
            authfile.display(),
            helm_config.display()
        ),
        "{configure}"
    );
    assert_eq!(configure.stderr, "", "the helper is on PATH, so no warning: {configure}");

    let cert_dir = registry.cert_dir().to_str().expect("UTF-8 path");
    let login = ["login", "--cert-dir", cert_dir, "-u", "iamapikey", "--password-stdin", &host];
    client.run_ok("skopeo", &login, Some(&format!("{API_KEY}\n")));
    let stored = fs::read_to_string(client.credentials_path()).expect("login stored through the helper");
    assert!(stored.contains(&host), "{stored}");
    let authfile_text = fs::read_to_string(&authfile).expect("read auth file");
    let authfile_json: serde_json::Value = serde_json::from_str(&authfile_text).expect("auth file is JSON");
    assert!(!authfile_text.contains(API_KEY), "{authfile_text}");
    assert!(authfile_json["auths"].get(&host).is_none(), "skopeo login stored in the auth file:\n{authfile_text}");

    let image = OciImage::build(&client.home().join("image"), "latest", "wired by configure\n");
    let target = format!("docker://{host}/ns/img:configured");
    client.run_ok("skopeo", &["copy", "--dest-cert-dir", cert_dir, &image.reference(), &target], None);
    let inspect = client.run_ok("skopeo", &["inspect", "--cert-dir", cert_dir, &target], None);
    assert_eq!(inspected_digest(&inspect.stdout), image.manifest_digest);

    // podman reads the same wiring: logs in through the helper and pulls with what it answers.
    let podman_login = ["login", "--tls-verify", "--cert-dir", cert_dir, "-u", "iamapikey", "--password-stdin", &host];
    let mut login_command = client.command("podman");
    let root = client.home().join("podman-root");
    let runroot = client.home().join("podman-runroot");
    login_command
        .args(["--root", root.to_str().unwrap(), "--runroot", runroot.to_str().unwrap(), "--storage-driver", "vfs"])
        .args(podman_login);
    support::run_bounded(login_command, Some(&format!("{API_KEY}\n")), support::COMMAND_TIMEOUT).assert_success();
    let authfile_text = fs::read_to_string(&authfile).expect("read auth file");
    assert!(!authfile_text.contains(API_KEY), "podman login wrote the key into the auth file:\n{authfile_text}");
    let pull = podman(&client, &["pull", "--tls-verify", "--cert-dir", cert_dir, &format!("{host}/ns/img:configured")]);
    pull.assert_success();
    let images = podman(&client, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    images.assert_success();
    assert_eq!(images.stdout, format!("{host}/ns/img:configured\n"), "{images}");
    scenario_users_are_iamapikey_only(&registry);

    // And `configure --remove` unwires both files again.
    let remove = client.run_ok(Helper::NAME, &["configure", "--remove", "--registries", &host], None);
    assert!(remove.stdout.contains(&format!("  - credHelpers \"{host}\": \"icr\"\n")), "{remove}");
    let docker_text = fs::read_to_string(&docker_config).expect("read docker config");
    assert!(!docker_text.contains(&host), "{docker_text}");
}

#[track_caller]
fn scenario_users_are_iamapikey_only(registry: &Registry) {
    let users = registry.authenticated_users();
    assert!(
        !users.is_empty() && users.iter().all(|u| u == "iamapikey"),
        "the registry should have authenticated iamapikey and no one else, got {users:?}:\n{}",
        registry.log()
    );
}

#[test]
fn harness_token_registry_takes_only_tokens_its_own_service_signed_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::tls::Tls::generate(dir.path(), &["127.0.0.1"]);
    let check = |user: &str, secret: &str| match (user, secret) {
        ("alice", "alice-pw") => Ok("alice".to_owned()),
        _ => Err("unknown".to_owned()),
    };
    let listen = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let tokens = TokenService::start(&tls, "127.0.0.1", listen(0), dir.path(), Arc::new(check));
    let registry_dir = tempfile::tempdir().unwrap();
    let other = TokenService::start(&tls, "127.0.0.1", listen(0), registry_dir.path(), Arc::new(check));
    let registry = Registry::with_token_service_on(
        &tokens,
        "harness",
        Listen { ip: "127.0.0.1".to_owned(), port: None, tls: Some(tls.clone()) },
    );
    let agent = registry.https_agent();
    let token_from = |realm: &str, service: &str, password: &str| -> Option<String> {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
        let mut response = agent
            .get(format!("{realm}?service={service}&scope=repository:ns/img:pull"))
            .header("Authorization", format!("Basic {basic}"))
            .call()
            .unwrap();
        (response.status() == 200).then(|| {
            let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
            body["token"].as_str().unwrap().to_owned()
        })
    };
    let v2 = |token: &str| {
        agent
            .get(format!("https://{}/v2/", registry.host()))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
    };
    // The challenge names the realm and the service.
    let challenge = agent.get(format!("https://{}/v2/", registry.host())).call().unwrap();
    assert_eq!(challenge.status(), 401);
    let header = challenge.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
    assert_eq!(header, format!("Bearer realm=\"{}\",service=\"harness\"", tokens.realm()));
    assert_eq!(token_from(&tokens.realm(), "harness", "wrong"), None, "the service refuses a wrong password");
    let good = token_from(&tokens.realm(), "harness", "alice-pw").expect("a token");
    assert_eq!(v2(&good), 200);
    let foreign = token_from(&other.realm(), "harness", "alice-pw").expect("a token of another service");
    assert_eq!(v2(&foreign), 401, "a token signed by another key");
    let elsewhere = token_from(&tokens.realm(), "another-registry", "alice-pw").expect("a token for another service");
    assert_eq!(v2(&elsewhere), 401, "a token for another audience");
    let decisions = tokens.decisions();
    assert_eq!(decisions.iter().filter(|d| d.outcome.is_ok()).count(), 2, "{decisions:#?}");
}
