//! The shell around the library: arguments, the environment snapshot, the system clock, the
//! real IAM exchange and the real streams.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use docker_credential_icr::{cli, clock::SystemClock, env::Env, iam};

fn main() {
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let env = Env::from_process();
    let exchange = iam::HttpExchange::default();
    let status = cli::run(
        &args,
        &env,
        &SystemClock,
        &exchange,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(status);
}
