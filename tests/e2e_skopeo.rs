//! End-to-end: skopeo, configured through an auth file's `credHelpers`, logs in, pushes,
//! inspects and logs out against a real distribution registry on loopback, with the built
//! `docker-credential-icr` answering its `store`, `get` and `erase` calls. The registry's
//! htpasswd holds exactly the credentials the helper should hand out, so a successful push or
//! inspect proves the registry received them.
//!
//! The `harness_*` tests check the harness itself with static `--creds`, no helper involved.

mod support;

use support::image::OciImage;
use support::registry::Registry;
use support::Helper;

/// Pushes `image` to `docker://HOST/<repo>` with static credentials (no helper involved).
fn push_with_creds(
    client: &Helper,
    registry: &Registry,
    image: &OciImage,
    repo: &str,
    creds: &str,
) {
    let dest = format!("docker://{}/{repo}", registry.host());
    let cert_dir = registry.cert_dir().to_str().expect("UTF-8 path");
    let reference = image.reference();
    let mut args = vec!["copy", "--dest-cert-dir", cert_dir];
    if !creds.is_empty() {
        args.extend(["--dest-creds", creds]);
    }
    args.extend([reference.as_str(), dest.as_str()]);
    client.run_ok("skopeo", &args, None);
}

/// The manifest digest `skopeo inspect` reports, from its JSON output.
fn inspected_digest(stdout: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("skopeo inspect printed no JSON ({e}):\n{stdout}"));
    json["Digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no Digest in skopeo inspect output:\n{stdout}"))
        .to_string()
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
    push_with_creds(&client, &registry, &image, "e2e/hello:1", "alice:alice-pw");

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
    assert!(
        registry
            .authenticated_users()
            .contains(&"carol".to_string()),
        "{}",
        registry.log()
    );
}

#[test]
fn harness_anonymous_registry_allows_push_and_pull_without_credentials() {
    support::require_tool("skopeo", "skopeo");
    let client = Helper::new();
    let registry = Registry::anonymous();
    let image = OciImage::build(&client.home().join("image"), "v1", "anonymous\n");
    push_with_creds(&client, &registry, &image, "open/hello:v1", "");
    let target = format!("docker://{}/open/hello:v1", registry.host());
    let cert_dir = registry.cert_dir().to_str().expect("UTF-8 path");
    let inspect = client.run_ok(
        "skopeo",
        &["inspect", "--cert-dir", cert_dir, &target],
        None,
    );
    assert_eq!(inspected_digest(&inspect.stdout), image.manifest_digest);
}
