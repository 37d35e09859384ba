//! `cargo bench --bench load`: where callsign stands against the least its requests could
//! cost. Starts ceiling servers and the release `callsign` binary on 127.0.0.1, pins each
//! server to one core and oha to the other, and reports requests per second, latency,
//! errors, peak memory and requests per server CPU-second, then one `ratio` line per
//! comparison. `LOAD_SECONDS` sets the length of each measurement (default 10),
//! `LOAD_CONCURRENCY` the number of connections (default 16). The PostgreSQL half runs
//! when `CALLSIGN_TEST_POSTGRES_URL` names a server where it may create a database.
//! See `docs/benchmarks.md`.

mod ceiling;
mod measure;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use measure::{Outcome, Plan, Request, SERVER_CORE, Server};

/// One row of the table.
struct Row {
    name: String,
    outcome: Outcome,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ceiling") => {
            let mode = ceiling::Mode::parse(&args[1]).expect("a ceiling mode");
            ceiling::serve(mode, args.get(2).cloned());
        }
        Some("otp-pair") => measure::pair_driver(&args[1..]),
        _ => run(),
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

/// The load generator: `oha` on `PATH` or in cargo's bin folder, else installed now with
/// `cargo install oha --locked`, once.
fn oha() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin").join("oha"));
    let candidates: Vec<PathBuf> = std::iter::once(PathBuf::from("oha"))
        .chain(cargo_bin)
        .collect();
    let find = || {
        candidates.iter().find(|program| {
            Command::new(program)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
    };
    if let Some(found) = find() {
        return found.clone();
    }
    eprintln!(
        "the load benchmark drives its servers with oha, which is not installed: installing it\n\
         with `cargo install oha --locked` (once, several minutes; --locked because the newest\n\
         versions of its dependencies need a newer rustc)"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let installed = Command::new(cargo)
        .args(["install", "oha", "--locked"])
        .status()
        .is_ok_and(|status| status.success());
    match find() {
        Some(found) if installed => found.clone(),
        _ => {
            eprintln!("oha could not be installed; install it with `cargo install oha --locked`");
            std::process::exit(2);
        }
    }
}

fn run() {
    let oha = oha();
    let seconds = env_number("LOAD_SECONDS", 10).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cores >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok();
    if !pinned {
        eprintln!("warning: fewer than 2 cores or no taskset: servers and load share the CPU");
    }
    let plan = Plan {
        seconds,
        warmup_seconds: (seconds / 5).clamp(1, 3),
        concurrency: env_number("LOAD_CONCURRENCY", 16).clamp(1, 64) as usize,
        pinned,
        clock_ticks: clock_ticks(),
        oha,
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let binary = Path::new(env!("CARGO_BIN_EXE_callsign"));
    println!(
        "load: {} s per target after {} s of warm-up, {} connections, server on core {}, \
         load on core {}{}",
        plan.seconds,
        plan.warmup_seconds,
        plan.concurrency,
        SERVER_CORE,
        measure::LOAD_CORE,
        if pinned { "" } else { " (not pinned)" }
    );

    // The JWKS document callsign serves, so that the static ceiling serves the same bytes.
    let sqlite = setup::Deployment::sqlite(binary, dir.path());
    let jwks = {
        let server = sqlite.start(&plan, "prepare");
        let document = setup::fetch_jwks(&server.base);
        drop(server);
        document
    };
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, &jwks).expect("the JWKS copy");

    let mut rows = Vec::new();
    rows.extend(ceilings(&plan, dir.path(), &jwks_file));
    rows.extend(callsign_rows(&plan, &sqlite, "sqlite", dir.path()));
    match std::env::var(setup::POSTGRES_URL_VAR) {
        Ok(server) => {
            let database = setup::PostgresDatabase::create(&server);
            let postgres = setup::Deployment::postgres(binary, dir.path(), database.url());
            rows.extend(callsign_rows(&plan, &postgres, "postgres", dir.path()));
            drop(database);
        }
        Err(_) => println!(
            "PostgreSQL skipped: set {} (e.g. postgres://postgres@127.0.0.1:5432/postgres) \
             to a server where the benchmark may create a database",
            setup::POSTGRES_URL_VAR
        ),
    }
    print_table(&rows);
    print_ratios(&rows);
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Starts the ceiling `mode` pinned to the server core; returns it with its base URL and
/// the subject token it accepts.
fn start_ceiling(
    plan: &Plan,
    dir: &Path,
    mode: &str,
    argument: Option<&str>,
) -> (Server, String, String) {
    let me = std::env::current_exe().expect("the bench's own path");
    let mut command = plan.command(SERVER_CORE, &me);
    command.args(["ceiling", mode]);
    command.args(argument);
    let mut server = Server::start(command, &dir.join(format!("ceiling-{mode}.log")));
    let base = format!("http://{}", server.next_line());
    let subject = server.next_line();
    (server, base, subject)
}

fn ceilings(plan: &Plan, dir: &Path, jwks_file: &Path) -> Vec<Row> {
    let start = |mode: &str, argument: Option<&Path>| {
        let argument = argument.map(|p| p.display().to_string());
        start_ceiling(plan, dir, mode, argument.as_deref())
    };
    let mut rows = Vec::new();

    let (server, base, _) = start("static", Some(jwks_file));
    let request = Request {
        url: format!("{base}/.well-known/jwks.json"),
        form: None,
    };
    rows.push(row(
        "ceiling_static",
        measure::measure_with_oha(plan, &server, &request),
    ));
    drop(server);

    let (server, base, subject) = start("verify-sign", None);
    let request = Request {
        url: format!("{base}/token"),
        form: Some(setup::exchange_form("bench", &subject)),
    };
    rows.push(row(
        "ceiling_verify_sign",
        measure::measure_with_oha(plan, &server, &request),
    ));
    drop(server);

    let (server, base, _) = start("sign", None);
    let request = Request {
        url: format!("{base}/token"),
        form: Some(setup::client_credentials_form("bench", "bench-secret")),
    };
    rows.push(row(
        "ceiling_sign",
        measure::measure_with_oha(plan, &server, &request),
    ));
    rows
}

fn callsign_rows(
    plan: &Plan,
    deployment: &setup::Deployment,
    backend: &str,
    dir: &Path,
) -> Vec<Row> {
    let numbers = &deployment.numbers[..plan.concurrency.min(deployment.numbers.len())];
    let mut rows = Vec::new();

    // The bare SQL of an OTP pair on the same database, before callsign runs on it.
    let (ceiling, ceiling_base, _) =
        start_ceiling(plan, dir, "otp-sql", Some(&deployment.database_url));
    let outcome = measure::measure_pairs(plan, &ceiling, &ceiling_base, "ceiling", numbers);
    rows.push(row(&format!("ceiling_otp_{backend}"), outcome));
    drop(ceiling);

    let server = deployment.start(plan, backend);
    let base = server.base.clone();
    let phone_token = setup::phone_token(&base, &deployment.app, &deployment.numbers[0]);
    let get = |path: &str| Request {
        url: format!("{base}{path}"),
        form: None,
    };
    let exchange = Request {
        url: format!("{base}/token"),
        form: Some(setup::exchange_form(&deployment.app, &phone_token)),
    };
    let machine = Request {
        url: format!("{base}/token"),
        form: Some(setup::client_credentials_form(
            &deployment.machine.0,
            &deployment.machine.1,
        )),
    };

    let outcome = measure::measure_with_oha(plan, &server.process, &get("/.well-known/jwks.json"));
    rows.push(row(&format!("jwks_{backend}"), outcome));
    let discovery = get("/.well-known/openid-configuration");
    let outcome = measure::measure_with_oha(plan, &server.process, &discovery);
    rows.push(row(&format!("discovery_{backend}"), outcome));
    // Two rounds of the token requests: the second shows whether memory keeps growing.
    for round in ["", "_again"] {
        let outcome = measure::measure_with_oha(plan, &server.process, &exchange);
        rows.push(row(&format!("token_exchange_{backend}{round}"), outcome));
        let outcome = measure::measure_with_oha(plan, &server.process, &machine);
        rows.push(row(
            &format!("client_credentials_{backend}{round}"),
            outcome,
        ));
        let outcome =
            measure::measure_pairs(plan, &server.process, &base, &deployment.app, numbers);
        rows.push(row(&format!("otp_pair_{backend}{round}"), outcome));
    }
    rows
}

fn row(name: &str, outcome: Outcome) -> Row {
    eprintln!("measured {name}");
    Row {
        name: name.to_owned(),
        outcome,
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<30} {:>9} {:>12} {:>8} {:>8} {:>7} {:>6} {:>9} {:>9}",
        "target",
        "req/s",
        "req/cpu-s",
        "p50 ms",
        "p99 ms",
        "errors",
        "cpu %",
        "peak MiB",
        "rss MiB"
    );
    for Row { name, outcome } in rows {
        println!(
            "{:<30} {:>9.0} {:>12.0} {:>8.2} {:>8.2} {:>7.0} {:>6.0} {:>9.1} {:>9.1}",
            name,
            outcome.rps(),
            outcome.per_cpu_second(),
            outcome.p50_ms,
            outcome.p99_ms,
            outcome.errors,
            100.0 * outcome.cpu_seconds / outcome.wall_seconds,
            outcome.peak_rss_mib,
            outcome.rss_mib,
        );
    }
    println!(
        "(otp_pair and ceiling_otp count start + grant pairs; peak is the server's peak \
         resident memory so far, rss its resident memory after the load; _again is the second \
         round of the same loads)"
    );
}

fn print_ratios(rows: &[Row]) {
    let find = |name: &str| rows.iter().find(|r| r.name == name).map(|r| &r.outcome);
    println!();
    for backend in ["sqlite", "postgres"] {
        let otp_ceiling = format!("ceiling_otp_{backend}");
        let pairs = [
            ("token_exchange", "ceiling_verify_sign"),
            ("jwks", "ceiling_static"),
            ("discovery", "ceiling_static"),
            ("client_credentials", "ceiling_sign"),
            ("otp_pair", otp_ceiling.as_str()),
        ];
        for (target, ceiling) in pairs {
            let name = format!("{target}_{backend}");
            if let (Some(target), Some(ceiling)) = (find(&name), find(ceiling)) {
                let ratio = target.per_cpu_second() / ceiling.per_cpu_second();
                println!("ratio {name} {ratio:.2}");
            }
        }
        // Memory after the first and the second round of the same loads.
        let first = find(&format!("otp_pair_{backend}"));
        let second = find(&format!("otp_pair_{backend}_again"));
        if let (Some(first), Some(second)) = (first, second) {
            let growth = 100.0 * (second.rss_mib / first.rss_mib - 1.0);
            println!(
                "rss_growth {backend} {growth:.1} % ({:.1} MiB after round 1, {:.1} MiB after round 2)",
                first.rss_mib, second.rss_mib
            );
        }
    }
}
