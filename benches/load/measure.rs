//! Measuring: servers pinned to one core, the load on the other, the server's CPU time
//! and peak memory read from `/proc`, and the load itself from oha (or, for the dependent
//! OTP pair, from this binary's own closed-loop client).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The core servers run on and the core the load comes from.
pub const SERVER_CORE: &str = "0";
pub const LOAD_CORE: &str = "1";

/// How to run load: for how long, with how many connections, pinned or not.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub concurrency: usize,
    pub pinned: bool,
    pub clock_ticks: f64,
    /// The load generator's program.
    pub oha: PathBuf,
}

impl Plan {
    /// `program` with its arguments, under `taskset -c core` when pinning.
    pub fn command(&self, core: &str, program: &Path) -> Command {
        if self.pinned {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(core).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

/// A server process, killed when dropped.
pub struct Server {
    child: Child,
    pub lines: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `command` with standard output piped; standard error goes to `log`.
    pub fn start(mut command: Command, log: &Path) -> Server {
        let log = std::fs::File::create(log).expect("a log file");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the server starts");
        let stdout = child.stdout.take().expect("a piped stdout");
        Server {
            child,
            lines: BufReader::new(stdout),
        }
    }

    /// The next line the server prints; panics with the log's path if it ends instead.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        let read = self
            .lines
            .read_line(&mut line)
            .expect("the server's output");
        assert!(read > 0, "the server stopped before it was ready");
        line.trim_end().to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU seconds the server has used so far (`/proc/PID/stat`).
    pub fn cpu_seconds(&self, plan: &Plan) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("the server is running");
        // The command name may contain spaces; the fields after it are fixed.
        let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / plan.clock_ticks
    }

    /// The peak resident set size so far, in MiB (`VmHWM` of `/proc/PID/status`).
    pub fn peak_rss_mib(&self) -> f64 {
        self.status_mib("VmHWM:")
    }

    /// The resident set size now, in MiB (`VmRSS`).
    pub fn rss_mib(&self) -> f64 {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server is running");
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request of a load: method, URL, and a form body for POST.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub form: Option<String>,
}

/// What one measured load gave.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub requests: f64,
    pub errors: f64,
    pub wall_seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
    /// The resident set size right after the load.
    pub rss_mib: f64,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.requests / self.wall_seconds
    }

    /// Requests per second of server CPU: the figure the ratios compare.
    pub fn per_cpu_second(&self) -> f64 {
        self.requests / self.cpu_seconds.max(1e-9)
    }
}

/// Warms the server up, then measures one load of `plan.seconds` with oha.
pub fn measure_with_oha(plan: &Plan, server: &Server, request: &Request) -> Outcome {
    run_oha(plan, request, plan.warmup_seconds);
    let cpu_before = server.cpu_seconds(plan);
    let report = run_oha(plan, request, plan.seconds);
    let cpu = server.cpu_seconds(plan) - cpu_before;
    // Counted as integers: an empty sum of floats is -0.
    let codes = report["statusCodeDistribution"].as_object();
    let count = |ok: bool| -> u64 {
        codes.map_or(0, |codes| {
            codes
                .iter()
                .filter(|(code, _)| code.starts_with('2') == ok)
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        })
    };
    let failures: u64 = report["errorDistribution"]
        .as_object()
        .map_or(0, |e| e.values().map(|n| n.as_u64().unwrap_or(0)).sum());
    let percentile = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1e3;
    Outcome {
        requests: count(true) as f64,
        errors: (count(false) + failures) as f64,
        wall_seconds: report["summary"]["total"]
            .as_f64()
            .unwrap_or(plan.seconds as f64),
        p50_ms: percentile("p50"),
        p99_ms: percentile("p99"),
        cpu_seconds: cpu,
        peak_rss_mib: server.peak_rss_mib(),
        rss_mib: server.rss_mib(),
    }
}

fn run_oha(plan: &Plan, request: &Request, seconds: u64) -> Value {
    let mut command = plan.command(LOAD_CORE, &plan.oha);
    command
        .arg("-z")
        .arg(format!("{seconds}s"))
        .arg("-c")
        .arg(plan.concurrency.to_string())
        .args(["--no-tui", "--output-format", "json"])
        .arg("--wait-ongoing-requests-after-deadline");
    if let Some(form) = &request.form {
        command
            .args([
                "-m",
                "POST",
                "-T",
                "application/x-www-form-urlencoded",
                "-d",
            ])
            .arg(form);
    }
    let output = command
        .arg(&request.url)
        .stdin(Stdio::null())
        .output()
        .expect("oha runs");
    assert!(
        output.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("oha prints JSON")
}

/// Warms up, then measures the OTP pair with this binary's own client (see `pair_driver`),
/// pinned to the load core.
pub fn measure_pairs(
    plan: &Plan,
    server: &Server,
    base: &str,
    client_id: &str,
    numbers: &[(String, String)],
) -> Outcome {
    let me = std::env::current_exe().expect("the bench's own path");
    let run = |seconds: u64| -> Value {
        let numbers: Vec<String> = numbers.iter().map(|(n, c)| format!("{n}={c}")).collect();
        let output = plan
            .command(LOAD_CORE, &me)
            .args(["otp-pair", base, client_id, &seconds.to_string()])
            .arg(numbers.join(","))
            .stdin(Stdio::null())
            .output()
            .expect("the pair driver runs");
        assert!(
            output.status.success(),
            "the pair driver failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the pair driver prints JSON")
    };
    run(plan.warmup_seconds);
    let cpu_before = server.cpu_seconds(plan);
    let report = run(plan.seconds);
    let cpu = server.cpu_seconds(plan) - cpu_before;
    let number = |name: &str| report[name].as_f64().unwrap_or(f64::NAN);
    Outcome {
        requests: number("pairs"),
        errors: number("errors"),
        wall_seconds: number("seconds"),
        p50_ms: number("p50_ms"),
        p99_ms: number("p99_ms"),
        cpu_seconds: cpu,
        peak_rss_mib: server.peak_rss_mib(),
        rss_mib: server.rss_mib(),
    }
}

/// The OTP pair's load generator: one task per test number, each in a closed loop of
/// `POST /otp/start` then the SMS-OTP grant with the number's fixed code. oha sends one
/// fixed request at a time and cannot chain the two, so this small client does. Prints
/// one JSON object: pairs completed, errors, seconds, and the pair latency percentiles.
pub fn pair_driver(args: &[String]) {
    let [base, client_id, seconds, numbers] = args else {
        panic!("usage: otp-pair BASE CLIENT_ID SECONDS NUMBER=CODE,...");
    };
    let seconds: u64 = seconds.parse().expect("seconds");
    let numbers: Vec<(String, String)> = numbers
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, c)| (n.to_owned(), c.to_owned()))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime.block_on(async move {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (number, code) in numbers {
            let (http, base, client_id) = (http.clone(), base.clone(), client_id.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    let start = [("client_id", &client_id), ("phone_number", &number)];
                    let grant = [
                        ("grant_type", &callsign::grants::SMS_OTP_GRANT.to_owned()),
                        ("client_id", &client_id),
                        ("phone_number", &number),
                        ("otp", &code),
                    ];
                    let ok = match http
                        .post(format!("{base}/otp/start"))
                        .form(&start)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            match http.post(format!("{base}/token")).form(&grant).send().await {
                                Ok(r) => {
                                    let ok = r.status().is_success();
                                    let _ = r.bytes().await;
                                    ok
                                }
                                Err(_) => false,
                            }
                        }
                        _ => false,
                    };
                    if ok {
                        latencies.push(begun.elapsed().as_secs_f64() * 1e3);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut l, e) = task.await.expect("a driver task");
            latencies.append(&mut l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        serde_json::json!({
            "pairs": latencies.len(),
            "errors": errors,
            "seconds": elapsed,
            "p50_ms": at(0.50),
            "p99_ms": at(0.99),
        })
    });
    println!("{report}");
}
