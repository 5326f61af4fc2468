//! The world a CLI test runs in: a data directory, fakes of the CamionBack API and of the
//! Cloud API, the `camionback-relay` binary run as staff run it, and waits on events.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relay_test_support::signing::{camionback_headers, unix_now};
use relay_test_support::{FakeCamionBack, FakeCloudApi, camionback, cloud_api};
use serde_json::{Value, json};

pub const WEBHOOK_SECRET: &str = "whsec-cli-test";
pub const BIN: &str = env!("CARGO_BIN_EXE_camionback-relay");

pub struct World {
    pub dir: tempfile::TempDir,
    pub camionback: FakeCamionBack,
    pub cloud: FakeCloudApi,
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl World {
    pub async fn new(cloud_delay: Duration) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            camionback: FakeCamionBack::start().await,
            cloud: FakeCloudApi::start_with_delay(cloud_delay).await,
            port: free_port(),
        }
    }

    /// The environment of a relay process of this world.
    pub fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RELAY_DATA_DIR", self.dir.path())
            .env("RELAY_WEBHOOK_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RELAY_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RELAY_THROTTLE_MS", "50")
            .env("CAMIONBACK_API_URL", self.camionback.url())
            .env("CAMIONBACK_API_TOKEN", camionback::TOKEN)
            .env("CAMIONBACK_POLL_SECS", "0")
            .env("RELAY_CHANNEL", "cloud-api")
            .env("WHATSAPP_API_URL", self.cloud.url())
            .env("WHATSAPP_PHONE_NUMBER_ID", cloud_api::PHONE_NUMBER_ID)
            .env("WHATSAPP_TOKEN", cloud_api::TOKEN);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        command
    }

    /// Starts `serve` without waiting for it to be up.
    pub fn spawn_serve(&self, extra_env: &[(&str, &str)]) -> Relay {
        Relay(Some(
            self.command(&["serve"], extra_env)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("serve starts"),
        ))
    }

    /// Starts `serve` and waits until it answers `/healthz`.
    pub async fn serve(&self, extra_env: &[(&str, &str)]) -> Relay {
        let relay = self.spawn_serve(extra_env);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", self.port)).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return relay;
            }
            assert!(Instant::now() < deadline, "serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a one-shot command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args, &[]).output().expect("command runs")
    }

    pub async fn post_order(&self, order: Value) -> reqwest::StatusCode {
        let body =
            serde_json::to_vec(&json!({ "event": "order.created", "order": order })).expect("json");
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/webhooks/orders", self.port))
            .body(body.clone());
        for (name, value) in camionback_headers(WEBHOOK_SECRET, unix_now(), &body) {
            request = request.header(name, value);
        }
        request.send().await.expect("webhook").status()
    }

    /// `history --json` for one order.
    pub fn history(&self, order: &str) -> Vec<Value> {
        let output = self.run(&["history", "--order", order, "--limit", "100000", "--json"]);
        assert!(
            output.status.success(),
            "history failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&output.stdout).expect("history prints a JSON array")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

pub fn add_carriers(camionback: &FakeCamionBack, count: i64) {
    for id in 1..=count {
        camionback.add_carrier(
            id,
            &format!("Transporteur {id}"),
            &format!("06123456{id:02}"),
            "valide",
        );
    }
}

pub fn order(id: i64) -> Value {
    camionback::order_json(
        id,
        &format!("CMD-2025-{id}"),
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A running `serve` process; killed if a test ends without stopping it.
pub struct Relay(Option<Child>);

impl Relay {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("relay still running")
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_9(&mut self) {
        let child = self.child();
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        self.0 = None;
    }

    /// `kill -TERM`, then waits for the exit.
    pub fn terminate(mut self) -> Output {
        let child = self.0.take().expect("relay still running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        child.wait_with_output().expect("relay exits")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `check` to hold, polling; fails the test after `limit`.
pub async fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn statuses(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .collect()
}
