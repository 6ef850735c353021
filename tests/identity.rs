//! The ways IBM's own SDKs and CLI authenticate that the helper learned from them, each against
//! stand-ins as strict as the services (crates/fake-iam: `iam.rs`, `metadata.rs`):
//!
//! - a VPC instance's own identity from the instance metadata service (opt-in only), for the
//!   instance's default trusted profile or one named by id or CRN;
//! - trusted profiles by CRN and by iam_id;
//! - refresh tokens from the environment, and the CLI session refreshed when its access token is
//!   spent, both with the `refresh_token` grant of client `bx`;
//! - requests shaped as IBM's clients send them: `response_type=cloud_iam`, an endpoint given
//!   with `/identity/token` not doubled, `BLUEMIX_HOME`;
//! - the error shapes IBM's clients read (`errors[]`, `error`, `message`), shown by code only.
//!
//! Whatever the helper hands out is checked with `FakeIam::validate`, the way a registry's token
//! service checks what a client presents.

mod common;

use common::iam::{fake_iam, API_KEY, PROFILE_ID, PROFILE_NAME};
use common::{Output, Scenario};
use fake_iam::{profile_crn, Behavior, FakeIam, FakeMetadata, MetadataConfig, BX_BASIC_AUTH, GRANT_REFRESH_TOKEN};

const VPC_PROFILE: &str = "Profile-7a1e2c3d-0000-4000-8000-00000000vpc1";
const OTHER_PROFILE: &str = "Profile-7a1e2c3d-0000-4000-8000-00000000vpc2";

/// The answer's username and secret, after checking that IAM would take the secret.
#[track_caller]
fn valid_answer(out: &Output, iam: &FakeIam, username: &str) -> String {
    let (user, secret) = out.answer("us.icr.io");
    assert_eq!(user, username, "{out}");
    assert!(iam.validate(&user, &secret).is_ok(), "IAM would refuse what the registry gets: {out}");
    secret
}

// ---- VPC instances --------------------------------------------------------------------------

/// IAM with two profiles, and an instance whose default is the first and to which both are
/// linked.
fn vpc() -> (FakeIam, FakeMetadata, Scenario) {
    let iam = fake_iam(|c| c.profile(VPC_PROFILE, "unused").profile(OTHER_PROFILE, "unused"));
    let md = FakeMetadata::start(&iam, MetadataConfig::new().default_profile(VPC_PROFILE).linked(OTHER_PROFILE));
    let mut s = Scenario::with_iam(&iam);
    s.set("DOCKER_CREDENTIAL_ICR_VPC_INSTANCE", "1").set("DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL", md.url());
    (iam, md, s)
}

#[test]
fn a_vpc_instance_gets_a_bearer_token_of_its_default_profile_as_ibms_sdk_asks_for_it() {
    let (iam, md, s) = vpc();
    let token = valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
    let claims = common::iam::claims(&token);
    assert_eq!(claims["sub"], format!("profile:{VPC_PROFILE}"));
    let requests = md.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let (put, post) = (&requests[0], &requests[1]);
    assert_eq!((put.method.as_str(), put.path.as_str()), ("PUT", "/instance_identity/v1/token"));
    assert_eq!(put.query.as_deref(), Some("version=2022-03-01"));
    assert_eq!(put.header("metadata-flavor"), Some("ibm"));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("accept"), Some("application/json"));
    assert_eq!(put.body, r#"{"expires_in": 300}"#);
    assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", "/instance_identity/v1/iam_token"));
    assert_eq!(post.query.as_deref(), Some("version=2022-03-01"));
    assert_eq!(post.header("metadata-flavor"), Some("ibm"));
    assert!(post.header("authorization").is_some_and(|a| a.starts_with("Bearer ey")), "{post:?}");
    assert_eq!(post.body, "", "no body: the instance's default profile");
    assert_eq!(iam.request_count(), 0, "nothing goes to IAM itself");
    // Cached like every bearer token.
    assert_eq!(valid_answer(&s.get("us.icr.io"), &iam, "iambearer"), token);
    assert_eq!(md.request_count(), 2);
}

#[test]
fn a_vpc_instance_names_its_profile_by_id_or_crn_from_the_environment_or_the_config_file() {
    let (iam, md, mut s) = vpc();
    let crn = profile_crn(OTHER_PROFILE);
    for (value, body) in [
        (OTHER_PROFILE.to_owned(), format!(r#"{{"trusted_profile":{{"id":"{OTHER_PROFILE}"}}}}"#)),
        (format!("iam-{OTHER_PROFILE}"), format!(r#"{{"trusted_profile":{{"id":"{OTHER_PROFILE}"}}}}"#)),
        (crn.clone(), format!(r#"{{"trusted_profile":{{"crn":"{crn}"}}}}"#)),
    ] {
        s.set("IBMCLOUD_CR_PROFILE", &value).set("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1");
        let token = valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
        assert_eq!(common::iam::claims(&token)["sub"], format!("profile:{OTHER_PROFILE}"));
        assert_eq!(md.last_request().unwrap().body, body, "{value}");
    }
    // A name is not something the metadata service takes: said before anything is sent.
    s.set("IBMCLOUD_CR_PROFILE", "ci-puller");
    let before = md.request_count();
    let out = s.get("us.icr.io");
    assert!(
        out.error_line().starts_with("IBMCLOUD_CR_PROFILE: the metadata service takes a trusted profile's id"),
        "{out}"
    );
    assert_eq!(md.request_count(), before);
    // The config file: a credential of an entry, or the default.
    s.unset("IBMCLOUD_CR_PROFILE").unset("DOCKER_CREDENTIAL_ICR_VPC_INSTANCE");
    s.write_config_json(&serde_json::json!({
        "vpcInstance": {},
        "registries": { "de.icr.io": { "vpcInstance": { "profileCrn": crn } } }
    }));
    let (_, secret) = s.get("de.icr.io").answer("de.icr.io");
    assert_eq!(common::iam::claims(&secret)["sub"], format!("profile:{OTHER_PROFILE}"));
    let (_, secret) = s.get("us.icr.io").answer("us.icr.io");
    assert_eq!(common::iam::claims(&secret)["sub"], format!("profile:{VPC_PROFILE}"));
    assert_eq!(md.last_request().unwrap().body, "");
}

#[test]
fn the_metadata_service_is_never_asked_unless_the_user_opts_in() {
    let (_iam, md, mut s) = vpc();
    s.unset("DOCKER_CREDENTIAL_ICR_VPC_INSTANCE");
    s.get("us.icr.io").not_found();
    s.set("DOCKER_CREDENTIAL_ICR_VPC_INSTANCE", "0");
    s.get("us.icr.io").not_found();
    assert_eq!(md.request_count(), 0);
}

#[test]
fn the_metadata_url_is_plain_http_only_at_its_link_local_address_or_loopback() {
    let (_iam, md, mut s) = vpc();
    for url in ["http://api.metadata.cloud.ibm.com", "http://10.0.0.1", "ftp://169.254.169.254"] {
        s.set("DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL", url);
        let line = s.get("us.icr.io").error_line();
        assert!(line.starts_with("DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL: the metadata service URL"), "{line}");
    }
    assert_eq!(md.request_count(), 0);
}

#[test]
fn a_refusal_of_the_metadata_service_is_named_with_its_code_and_trace_and_nothing_it_echoed() {
    let iam = fake_iam(|c| c.profile(VPC_PROFILE, "unused"));
    // Linked, but not the default: an instance without a default profile and none named.
    let md = FakeMetadata::start(&iam, MetadataConfig::new().linked(VPC_PROFILE));
    let mut s = Scenario::with_iam(&iam);
    s.set("DOCKER_CREDENTIAL_ICR_VPC_INSTANCE", "1").set("DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL", md.url());
    let line = s.get("us.icr.io").error_line();
    let trace = line.rsplit("(request id ").next().unwrap().trim_end_matches(')');
    assert_eq!(
        line,
        format!(
            "the VPC metadata service at {} refused an IAM token for the instance's identity (HTTP 400, invalid_value) (request id {trace})",
            md.url()
        )
    );
    assert_eq!(trace.len(), 36, "{line}");
    // A stalled or absent service is named, and bounded like IAM.
    let nothing = format!("http://127.0.0.1:{}", common::iam::unused_port());
    s.set("DOCKER_CREDENTIAL_ICR_VPC_METADATA_URL", &nothing);
    let line = s.get("us.icr.io").error_line();
    assert!(line.starts_with(&format!("cannot connect to the VPC metadata service at {nothing} (")), "{line}");
    assert!(
        line.ends_with("is this a VPC instance with the metadata service enabled? (it is off by default)"),
        "{line}"
    );
}

#[test]
fn explain_says_where_a_vpc_instance_gets_its_token() {
    let (_iam, md, s) = vpc();
    let out = s.run(&["explain", "us.icr.io"], "");
    let text = out.stdout();
    assert!(text.contains("  3. environment: found VPC instance identity from the metadata service (the instance's default trusted profile) in DOCKER_CREDENTIAL_ICR_VPC_INSTANCE\n"), "{text}");
    assert!(
        text.contains(&format!(
            "answer:      username iambearer, an IAM access token from the VPC instance metadata service at {}\n",
            md.url()
        )),
        "{text}"
    );
    assert_eq!(md.request_count(), 0, "explain without --check asks nobody");
}

// ---- Trusted profiles by CRN and iam_id ----------------------------------------------------

#[test]
fn a_trusted_profile_is_sent_by_crn_or_id_as_the_cli_documents_ibmcloud_cr_profile() {
    let iam = fake_iam(|c| c);
    let mut s = Scenario::with_iam(&iam);
    s.set("IBMCLOUD_CR_TOKEN", common::iam::cr_token()).set("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1");
    let crn = profile_crn(PROFILE_ID);
    for (value, field, sent) in [
        (crn.as_str(), "profile_crn", crn.as_str()),
        (&*format!("iam-{PROFILE_ID}"), "profile_id", PROFILE_ID),
        (PROFILE_ID, "profile_id", PROFILE_ID),
        (PROFILE_NAME, "profile_name", PROFILE_NAME),
    ] {
        s.set("IBMCLOUD_CR_PROFILE", value);
        valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
        let request = iam.last_request().unwrap();
        assert_eq!(request.field(field), Some(sent), "{value}");
        let profile_fields: Vec<&String> = request.form.keys().filter(|k| k.starts_with("profile_")).collect();
        assert_eq!(profile_fields.len(), 1, "one way of naming the profile: {:?}", request.form);
        assert_eq!(request.field("response_type"), Some("cloud_iam"));
    }
    s.unset("IBMCLOUD_CR_PROFILE");
    s.write_config_json(&serde_json::json!({ "trustedProfile": { "profileCrn": crn } }));
    valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
    assert_eq!(iam.last_request().unwrap().field("profile_crn"), Some(crn.as_str()));
}

// ---- Refresh tokens -------------------------------------------------------------------------

/// A refresh token IAM issued to client `bx` for the API key.
fn issued_refresh_token(iam: &FakeIam) -> String {
    let mut s = Scenario::with_iam(iam);
    s.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh");
    s.set("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1");
    s.get("us.icr.io").answer("us.icr.io").1
}

#[test]
fn a_refresh_token_from_the_environment_is_handed_out_or_exchanged_as_client_bx() {
    let iam = fake_iam(|c| c);
    let refresh = issued_refresh_token(&iam);
    let mut s = Scenario::with_iam(&iam);
    for name in ["IBMCLOUD_IAM_REFRESH_TOKEN", "IC_IAM_REFRESH_TOKEN"] {
        let mut s = Scenario::with_iam(&iam);
        s.set(name, &refresh);
        let before = iam.request_count();
        assert_eq!(valid_answer(&s.get("us.icr.io"), &iam, "iamrefresh"), refresh, "{name}: as it is by default");
        assert_eq!(iam.request_count(), before, "no IAM call to hand it over");
    }
    s.set("IBMCLOUD_IAM_REFRESH_TOKEN", &refresh).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let access = valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
    assert!(!access.is_empty() && access != refresh);
    let request = iam.last_request().unwrap();
    assert_eq!(request.field("grant_type"), Some(GRANT_REFRESH_TOKEN));
    assert_eq!(request.field("refresh_token"), Some(refresh.as_str()));
    assert_eq!(request.field("response_type"), Some("cloud_iam"));
    assert_eq!(request.authorization.as_deref(), Some(BX_BASIC_AUTH));
    // An API key comes first.
    s.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iamapikey");
    s.get("us.icr.io").ok(&common::get_answer("us.icr.io", "iamapikey", API_KEY));
}

#[test]
fn a_spent_refresh_token_says_what_iam_said_and_what_to_do() {
    let iam = fake_iam(|c| c);
    let refresh = issued_refresh_token(&iam);
    let mut s = Scenario::with_iam(&iam);
    s.set("IBMCLOUD_IAM_REFRESH_TOKEN", &refresh).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    s.set("DOCKER_CREDENTIAL_ICR_NO_CACHE", "1");
    iam.expire_refresh_tokens();
    let out = s.get("us.icr.io");
    let line = common::iam::blank_request_id(&out.never_shows(&refresh).error_line());
    assert_eq!(
        line,
        format!(
            "IAM at {} refused the refresh token (HTTP 400, BXNIM0408E): the refresh token has expired: log in again (request id <ID>): log in again (`ibmcloud login`), or set a new IBMCLOUD_IAM_REFRESH_TOKEN",
            iam.url()
        )
    );
    let refresh = issued_refresh_token(&iam);
    s.set("IBMCLOUD_IAM_REFRESH_TOKEN", &refresh);
    iam.end_sessions();
    let line = s.get("us.icr.io").never_shows(&refresh).error_line();
    assert!(line.contains("(HTTP 400, BXNIM0439E): the session is not active any more: log in again"), "{line}");
}

#[test]
fn in_iambearer_mode_a_spent_cli_session_is_refreshed_and_its_file_left_alone() {
    let iam = fake_iam(|c| c);
    let refresh = issued_refresh_token(&iam);
    let mut s = Scenario::with_iam(&iam);
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    let spent = common::jwt_expiring_in(-60);
    let text = format!(r#"{{ "IAMToken": "Bearer {spent}", "IAMRefreshToken": "{refresh}", "Region": "us-south" }}"#);
    let path = s.write_session(&text);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let out = s.get("us.icr.io");
    let access = valid_answer(out.never_shows(&refresh), &iam, "iambearer");
    assert_ne!(access, refresh, "the registry never gets the long-lived refresh token in this mode");
    assert_eq!(iam.last_request().unwrap().field("grant_type"), Some(GRANT_REFRESH_TOKEN));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
    // In the other modes the refresh token is handed out as before.
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh");
    assert_eq!(valid_answer(&s.get("us.icr.io"), &iam, "iamrefresh"), refresh);
}

// ---- Requests as IBM's clients send them ------------------------------------------------------

#[test]
fn every_token_request_asks_for_cloud_iam_and_an_endpoint_given_as_the_token_url_is_not_doubled() {
    let iam = fake_iam(|c| c);
    let mut s = Scenario::with_endpoint(&iam.token_url());
    s.set("IBMCLOUD_API_KEY", API_KEY).set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
    valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
    s.set("DOCKER_CREDENTIAL_ICR_MODE", "iamrefresh");
    valid_answer(&s.get("us.icr.io"), &iam, "iamrefresh");
    let mut s = Scenario::with_endpoint(&format!("{}/", iam.token_url()));
    s.set("IBMCLOUD_CR_PROFILE", PROFILE_ID).set("IBMCLOUD_CR_TOKEN", common::iam::cr_token());
    valid_answer(&s.get("us.icr.io"), &iam, "iambearer");
    for request in iam.requests() {
        assert_eq!(request.path, "/identity/token");
        assert_eq!(request.field("response_type"), Some("cloud_iam"), "{request:?}");
        assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        assert!(request.header("content-length").is_some(), "IAM requires Content-Length");
    }
    assert_eq!(iam.request_count(), 3);
}

#[test]
fn bluemix_home_is_read_where_the_cli_reads_it() {
    let mut s = Scenario::new();
    let bluemix = s.root().join("bluemix-home");
    common::write_file(&bluemix.join(".bluemix/config.json"), r#"{ "IAMRefreshToken": "bluemix-home-refresh" }"#);
    s.set("BLUEMIX_HOME", &bluemix);
    s.get("us.icr.io").ok(&common::get_answer("us.icr.io", "iamrefresh", "bluemix-home-refresh"));
    // IBMCLOUD_HOME comes first; BLUEMIX_HOME is the deprecated name.
    let ibmcloud = s.root().join("ibmcloud-home");
    common::write_file(&ibmcloud.join(".ibmcloud/config.json"), r#"{ "IAMRefreshToken": "ibmcloud-home-refresh" }"#);
    s.set("IBMCLOUD_HOME", &ibmcloud);
    s.get("us.icr.io").ok(&common::get_answer("us.icr.io", "iamrefresh", "ibmcloud-home-refresh"));
}

// ---- Error shapes ---------------------------------------------------------------------------

#[test]
fn the_error_shapes_ibms_clients_read_are_shown_by_code_and_never_by_their_text() {
    let shapes = [
        (
            r#"{"errors":[{"code":"BXNIM0415E","message":"key ECHOED-SECRET-1 not found"}],"trace":"abc-123"}"#,
            "(HTTP 400, BXNIM0415E): Provided API key could not be found (request id abc-123)",
        ),
        (
            r#"{"error":"ECHOED-SECRET-1 is not valid","code":"BXNIM0407E"}"#,
            "(HTTP 400, BXNIM0407E): the token is not valid",
        ),
        (r#"{"message":"ECHOED-SECRET-1"}"#, "(HTTP 400)"),
        (
            r#"{"errorCode":"BXNIM0415E","errorMessage":"x","errorDetails":"ECHOED-SECRET-1","context":{"requestId":"r-1"}}"#,
            "(HTTP 400, BXNIM0415E): Provided API key could not be found (request id r-1)",
        ),
    ];
    for (body, shown) in shapes {
        let iam = fake_iam(|c| c.behavior(Behavior::Raw { status: 400, body: body.to_owned() }));
        let mut s = Scenario::with_iam(&iam);
        s.set("IBMCLOUD_API_KEY", "ECHOED-SECRET-1").set("DOCKER_CREDENTIAL_ICR_MODE", "iambearer");
        let line = s.get("us.icr.io").never_shows("ECHOED-SECRET-1").error_line();
        assert_eq!(
            line,
            format!("IAM at {} refused the API key {shown}: check the key or profile, or create a new one", iam.url()),
            "{body}"
        );
    }
}
