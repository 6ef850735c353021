//! The shell around the library: arguments, the environment snapshot, the system clock, the
//! real IAM exchange and the real streams.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use docker_credential_icr::{cli, clock::SystemClock, env::Env, iam};

fn main() {
    let deadline = iam::deadline(std::time::Instant::now());
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let env = Env::from_process();
    let exchange = iam::HttpExchange::new(iam::http::Limits::default(), deadline, iam::Network::from_env(&env));
    let status = cli::run(
        &args,
        &env,
        &SystemClock,
        &exchange,
        deadline,
        cli::Streams {
            stdin: &mut std::io::stdin().lock(),
            stdout: &mut std::io::stdout().lock(),
            stderr: &mut std::io::stderr().lock(),
        },
    );
    std::process::exit(status);
}
