//! The admin console in a real headless Chromium, driven over WebDriver by chromedriver.
//! Both come from the system (Debian `chromium` and `chromium-driver`); the test fails when
//! they are missing. A screenshot of every page lands in a folder printed at the start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use callsign::config::TestNumberConfig;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ADMIN_PHONE: &str = "+12025550150";
const ADMIN_CODE: &str = "246810";
const FIRST_PHONE: &str = "+12025550151";
const SECOND_PHONE: &str = "+12025550152";

/// chromedriver on a free loopback port with a fresh Chromium profile; stopped, with the
/// browser it started, when dropped, even when the test fails half-way.
struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install the Debian packages chromium and chromium-driver"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().expect("a profile folder"),
        };
        // Wait until it answers: up to 20 seconds, in steps of 100 ms.
        let http = reqwest::Client::new();
        for _ in 0..200 {
            let status = http.get(format!("{}/status", driver.url)).send().await;
            if status.is_ok_and(|s| s.status().is_success()) {
                return driver;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {}", driver.url);
    }

    async fn browser(&self) -> Client {
        let profile = self.profile.path();
        let options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // chromedriver leaves its browser running when it is killed: stop every process
        // started with this test's own profile folder.
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let ours = cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == marker.as_bytes());
            if ours {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
}

/// The browser, the server and the folder the screenshots go to.
struct Session<'a> {
    browser: Client,
    app: &'a TestApp,
    shots: PathBuf,
    taken: usize,
}

impl Session<'_> {
    async fn open(&self, path: &str) {
        self.browser
            .goto(&self.app.url(path))
            .await
            .expect("the page opens");
    }

    /// The path of the page shown, with its query when there is one.
    async fn path(&self) -> String {
        let url = self.browser.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the browser shows a page whose path (and query) `wanted` accepts, for up
    /// to 30 seconds: a click returns before the navigation it starts has finished.
    async fn arrive(&self, wanted: impl Fn(&str) -> bool) -> String {
        let mut path = String::new();
        for _ in 0..300 {
            path = self.path().await;
            let ready = self
                .browser
                .execute("return document.readyState", vec![])
                .await
                .ok()
                .and_then(|state| state.as_str().map(str::to_owned));
            if wanted(&path) && ready.as_deref() == Some("complete") {
                return path;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the browser stayed on {path}: {}", self.source().await);
    }

    async fn arrive_at(&self, wanted: &str) {
        self.arrive(|path| path == wanted).await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.browser.find(Locator::Css(css)).await.expect(css);
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        let element = self.browser.find(Locator::Css(css)).await.expect(css);
        element.click().await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        let element = self.browser.find(Locator::Css(css)).await.expect(css);
        element.text().await.unwrap()
    }

    async fn source(&self) -> String {
        self.browser.source().await.unwrap()
    }

    async fn screenshot(&mut self, name: &str) {
        self.taken += 1;
        let png = self.browser.screenshot().await.expect("a screenshot");
        let file = self.shots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&file, png).expect("the screenshot is saved");
    }
}

#[tokio::test]
async fn an_admin_works_through_the_console_in_chromium() {
    let driver = Driver::start().await;
    let app = spawn_app_with(|c| {
        c.sms.test_numbers.insert(
            ADMIN_PHONE.into(),
            TestNumberConfig::Code(ADMIN_CODE.into()),
        );
    })
    .await;
    let phone = callsign::phone::Phone::parse(ADMIN_PHONE, None).unwrap();
    callsign::admin::roles::grant_admin(&app.services.store, app.clock.as_ref(), &phone, "test")
        .await
        .unwrap();

    // Two users, each with a number; the admin moves one number to the other user.
    let setup = callsign::admin::Actor {
        name: "test".into(),
        address: String::new(),
    };
    let from = callsign::admin::users::create(&app.services, &setup, Some(FIRST_PHONE))
        .await
        .unwrap()
        .user
        .id;
    let to = callsign::admin::users::create(&app.services, &setup, Some(SECOND_PHONE))
        .await
        .unwrap()
        .user
        .id;

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screenshots")
        .join(callsign::crypto::random_id("run_"));
    std::fs::create_dir_all(&shots).unwrap();
    println!("screenshots: {}", shots.display());
    let mut s = Session {
        browser: driver.browser().await,
        app: &app,
        shots,
        taken: 0,
    };

    // Signing in: the console sends a browser without a session to the phone form.
    s.open("/admin").await;
    assert_eq!(s.path().await, "/admin/login");
    s.fill("#phone_number", ADMIN_PHONE).await;
    s.screenshot("login").await;
    s.click("button[type=submit]").await;
    s.arrive_at("/admin/login/code").await;
    s.fill("#otp", ADMIN_CODE).await;
    s.screenshot("code").await;
    s.click("main button[type=submit]").await;
    s.arrive_at("/admin").await;
    assert!(s.source().await.contains("console.signed_in"));
    s.screenshot("overview").await;

    // An audience.
    s.open("/admin/audiences").await;
    s.fill("#identifier", "https://orders.api.example.test")
        .await;
    s.fill("#scopes", "orders:read orders:write").await;
    s.fill("#ttl", "600").await;
    s.click("main button[type=submit]").await;
    s.arrive_at("/admin/audiences?done=created").await;
    assert!(s.text(".notice").await.contains("registered"));
    assert!(s.source().await.contains("https://orders.api.example.test"));
    s.screenshot("audiences").await;

    // A confidential client for that audience, and its secret, shown once.
    s.open("/admin/clients/new").await;
    s.fill("#name", "Orders backend").await;
    s.click("input[name=grant][value=client_credentials]").await;
    s.click("input[name=audience][value='https://orders.api.example.test']")
        .await;
    s.fill("#scopes", "orders:read").await;
    s.screenshot("client-form").await;
    s.click("main button[type=submit]").await;
    s.browser
        .wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::Css("#client_secret"))
        .await
        .expect("the secret page");
    let secret = s.text("#client_secret").await;
    assert!(secret.len() >= 32, "a secret on the page: {secret:?}");
    s.screenshot("client-secret").await;
    s.click("main a").await;
    s.arrive(|path| path.starts_with("/admin/clients/cl_"))
        .await;
    let client_page = s.source().await;
    assert!(client_page.contains("Orders backend"));
    assert!(!client_page.contains(&secret), "the secret is shown once");
    s.screenshot("client").await;
    s.open("/admin/clients").await;
    assert!(s.source().await.contains("Orders backend"));
    s.screenshot("clients").await;

    // Find the first user by a fragment of the number, and move the number to the second.
    s.open("/admin/users").await;
    s.fill("#phone", "555 0151").await;
    s.click("main form button").await;
    s.arrive(|path| path.starts_with("/admin/users?phone="))
        .await;
    let found = s.source().await;
    assert!(
        found.contains(&from) && !found.contains(&to),
        "only the holder is found"
    );
    s.screenshot("users").await;
    s.click(&format!("a[href$='/users/{from}']")).await;
    s.arrive_at(&format!("/admin/users/{from}")).await;
    s.fill("input[name=to]", &to).await;
    s.screenshot("user-before-move").await;
    s.click("form[action$='/move'] button").await;
    s.arrive_at(&format!("/admin/users/{to}?done=moved")).await;
    let moved = s.source().await;
    assert!(moved.contains(FIRST_PHONE) && moved.contains(SECOND_PHONE));
    s.screenshot("user-after-move").await;

    s.open("/admin/keys").await;
    assert!(s.source().await.contains("state-active"));
    s.screenshot("keys").await;

    // The changes are in the audit log, with the admin as actor; the move is recorded for
    // both users.
    s.open("/admin/audit").await;
    let audit = s.source().await;
    assert!(audit.contains("audience.created"));
    assert!(audit.contains("client.created"));
    assert_eq!(audit.matches("<td>user.phone_moved</td>").count(), 2);
    s.screenshot("audit").await;
    s.fill("#action", "user.phone_moved").await;
    s.click("main form button").await;
    s.arrive(|path| path.starts_with("/admin/audit?action=user.phone_moved"))
        .await;
    let filtered = s.source().await;
    assert!(filtered.contains(&from) && filtered.contains(&to));
    assert!(!filtered.contains("client.created"));
    s.screenshot("audit-moves").await;

    // Signing out ends the session.
    s.click("header button").await;
    s.arrive_at("/admin/login?signed_out").await;
    s.screenshot("signed-out").await;
    s.open("/admin/audit").await;
    assert_eq!(s.path().await, "/admin/login");

    s.browser.close().await.unwrap();
}
