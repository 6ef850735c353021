//! `explain <server URL> [--check]`: what `get` would do for a server URL, and why — the host,
//! the region, each source in order with the reason it did not apply, the mode, and the state of
//! the cached IAM token. Secrets appear as a fingerprint (their last four characters) only.
//!
//! It renders the same plan `get` executes (`resolve::plan_registry`), and reports each source as
//! that walk reaches it, so what it says is what `get` does. Exit status 1 where `get` would not answer
//! with credentials. `--check` goes one step further and makes the IAM exchange.

use std::fmt::Write as _;

use super::wants_help;
use crate::context::Context;
use crate::error::{Error, Result, ERR_NOT_FOUND};
use crate::iam::{cache, Cached, Grant, Token};
use crate::invocation::{shown, Io};
use crate::jwt;
use crate::mode::Mode;
use crate::registry;
use crate::resolve::{self, Event, NotFound, Outcome, Plan, Step, Take};
use crate::source::Credential;

const USAGE: &str = "\
Usage: docker-credential-icr explain <server URL> [--check]

Shows what `get` would answer for the server URL and why: the host, its region, each
credential source in order with the reason it did not apply, the mode, and the cached IAM
token. Secrets are shown as their last four characters only. Exits 1 when `get` would find no
credentials.

Options:
  --check    also make the IAM exchange and report IAM's answer
";

pub fn run(ctx: &Context, io: &mut Io) -> Result<i32> {
    if wants_help(io.args) {
        io.print(USAGE)?;
        return Ok(0);
    }
    let mut server_url = None;
    let mut check = false;
    for arg in io.args {
        match arg.as_str() {
            "--check" => check = true,
            other if other.starts_with('-') => {
                return Err(Error::input(format!("unknown argument `{}`", shown(other))))
            }
            other if server_url.is_none() => server_url = Some(other),
            other => return Err(Error::input(format!("one server URL only, not also `{}`", shown(other)))),
        }
    }
    let server_url = server_url.ok_or_else(|| Error::input("no server URL given"))?;
    let mut report = Report::default();
    let status = explain(ctx, server_url, check, &mut report);
    io.print(&report.0)?;
    Ok(status)
}

#[derive(Default)]
struct Report(String);

impl Report {
    fn line(&mut self, label: &str, text: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{:<13}{text}", format!("{label}:"));
    }

    fn source(&mut self, n: usize, name: &str, text: impl std::fmt::Display) {
        let _ = writeln!(self.0, "  {n}. {name}: {text}");
    }

    /// The last line when `get` has no credentials to give.
    fn not_found(&mut self) -> i32 {
        self.line("get answers", format_args!("{ERR_NOT_FOUND} (docker then pulls anonymously)"));
        1
    }

    fn failed(&mut self, error: &Error) -> i32 {
        self.line("get fails", error);
        1
    }
}

fn explain(ctx: &Context, server_url: &str, check: bool, report: &mut Report) -> i32 {
    let registry = match registry::parse_server_url(server_url) {
        Ok(registry) => registry,
        Err(e) => {
            report.line("registry", format_args!("none: `{}`: {e}", shown(server_url)));
            return report.not_found();
        }
    };
    report.line("registry", &registry);
    // The same walk `get` makes, reported as it goes.
    let mut sources = 0;
    let outcome = resolve::plan_registry(ctx, &registry, &mut |event| match event {
        Event::Ours(registry) => match registry.icr() {
            Some((region, kind)) => report.line("ICR", format_args!("yes, {kind} domain of region {}", region.id)),
            None => report.line("ICR", format_args!("no, but named in the config file {}", config_path(ctx))),
        },
        Event::Mode(mode) => {
            report.line("mode", mode);
            report.line("sources", "in the order get consults them");
        }
        Event::Missed { source, why, .. } => {
            sources += 1;
            report.source(sources, source, why);
        }
        Event::Found { source, found, .. } => {
            sources += 1;
            let what =
                format!("found {} {} in {}", found.credential.kind(), fingerprint(&found.credential), found.origin);
            report.source(sources, source, what);
        }
        Event::Failed { source } => {
            sources += 1;
            report.source(sources, source, "error");
        }
    });
    let plan = match outcome {
        Ok(Outcome::Plan(plan)) => plan,
        Ok(Outcome::NotFound(NotFound::NotOurs(not_ours))) => {
            report.line("ICR", format_args!("no: {not_ours}"));
            return report.not_found();
        }
        Ok(Outcome::NotFound(_)) => return report.not_found(),
        Err(e) => return report.failed(&e),
    };
    answer(ctx, &plan, report);
    if check {
        return self::check(ctx, plan, report);
    }
    0
}

fn fingerprint(credential: &Credential) -> String {
    match credential {
        Credential::ApiKey(s) | Credential::Bearer(s) | Credential::Refresh(s) => s.fingerprint(),
        Credential::TrustedProfile { profile, cr_token } => format!("({profile}, token {})", cr_token.fingerprint()),
        Credential::Login { username, secret } => format!("(user {username}, secret {})", secret.fingerprint()),
        Credential::VpcInstance { profile: Some(profile) } => format!("({profile})"),
        Credential::VpcInstance { profile: None } => "(the instance's default trusted profile)".to_owned(),
    }
}

/// What `get` answers with, as the plan says, and the cached token it would reuse.
fn answer(ctx: &Context, plan: &Plan, report: &mut Report) {
    let now = ctx.clock.now();
    let exchange = match &plan.step {
        Step::Give(credential) => {
            report.line(
                "answer",
                format_args!("username {}, the {} as it is; no IAM call", plan.username(), credential.kind()),
            );
            if let Credential::Bearer(token) = credential {
                match jwt::expiry(token.expose()) {
                    Some(exp) if exp > now => report.line("token", format_args!("expires in {} s", exp - now)),
                    Some(exp) => report.line("token", format_args!("expired {} s ago", now - exp)),
                    None => report.line("token", "not a JWT: its expiry is unknown"),
                }
            }
            return;
        }
        Step::Exchange(exchange) => exchange,
    };
    if matches!(exchange.grant, Grant::CrToken { .. } | Grant::Instance { .. }) && plan.mode == Mode::Refresh {
        report.line("note", "this identity yields bearer tokens only, not refresh tokens");
    }
    let what = match exchange.take {
        Take::Access => "access token",
        Take::Refresh => "refresh token",
    };
    match exchange.grant {
        Grant::Instance { .. } => report.line(
            "answer",
            format_args!(
                "username {}, an IAM access token from the VPC instance metadata service at {}",
                plan.username(),
                exchange.endpoint
            ),
        ),
        _ => report.line(
            "answer",
            format_args!("username {}, an IAM {what} from {}", plan.username(), exchange.endpoint.token_url()),
        ),
    }
    match ctx.exchange.cached(&exchange.endpoint, &exchange.grant) {
        Cached::Off => report.line("token cache", "off: every get asks IAM"),
        Cached::Unusable(why) => report.line("token cache", format_args!("not used ({why}): every get asks IAM")),
        Cached::Empty(dir) => {
            report.line("token cache", format_args!("empty: get asks IAM (cache in {})", dir.display()))
        }
        Cached::Token(token) => report.line("token cache", describe_token(&token, now)),
    }
}

fn describe_token(token: &Token, now: u64) -> String {
    let age = now.saturating_sub(token.issued_at);
    let state = if cache::is_fresh(token, now) {
        "fresh, get reuses it".to_owned()
    } else if cache::is_usable(token, now) {
        "past 80 % of its lifetime: get asks IAM again and falls back to it if IAM fails".to_owned()
    } else {
        "expired: get asks IAM again".to_owned()
    };
    let expiry = if token.expires_at > now {
        format!("expires in {} s", token.expires_at - now)
    } else {
        format!("expired {} s ago", now - token.expires_at)
    };
    format!("access token {}, issued {age} s ago, {expiry}; {state}", token.access.fingerprint())
}

/// `--check`: the exchange `get` makes, through the token cache as `get` does; for an API key
/// that `get` hands out as it is, an exchange that proves IAM accepts it.
fn check(ctx: &Context, plan: Plan, report: &mut Report) -> i32 {
    let (endpoint, grant, take) = match plan.step {
        Step::Exchange(exchange) => (Ok(exchange.endpoint), exchange.grant, exchange.take),
        Step::Give(Credential::ApiKey(apikey)) => {
            (ctx.iam_endpoint(), Grant::ApiKey { apikey, refresh: false }, Take::Access)
        }
        Step::Give(credential) => {
            report.line(
                "check",
                format_args!("nothing to exchange: the {} goes to the registry as it is", credential.kind()),
            );
            return 0;
        }
    };
    match endpoint.and_then(|endpoint| ctx.exchange.exchange(&endpoint, &grant)) {
        Ok(token) => {
            let expiry = token.expires_at.saturating_sub(ctx.clock.now());
            let refresh = match (take, &token.refresh) {
                (Take::Refresh, Some(refresh)) => format!(", refresh token {}", refresh.fingerprint()),
                (Take::Refresh, None) => {
                    report.line("check", "IAM issued no refresh token for client bx, so get fails: use mode iambearer");
                    return 1;
                }
                (Take::Access, _) => String::new(),
            };
            report.line(
                "check",
                format_args!("IAM issued access token {}, expires in {expiry} s{refresh}", token.access.fingerprint()),
            );
            0
        }
        Err(e) => {
            report.line("check", format_args!("the IAM exchange failed: {e}"));
            1
        }
    }
}

fn config_path(ctx: &Context) -> String {
    match ctx.config_path() {
        Ok(Some(path)) => path.display().to_string(),
        Ok(None) => "(no config directory)".to_owned(),
        Err(e) => format!("(none: {e})"),
    }
}
