//! The live dashboard of `GET /events` in a real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` from `chromium-driver` over the W3C WebDriver protocol): with 5
//! vehicles running, the page's received counter goes up and the vehicles appear in its table
//! and on its map; after the fleet stopped and the consumer caught up, the page's stored count,
//! vehicle count and per-make counts equal SQL over `diag`. Also `Accept: application/json` and
//! the resumption of `GET /events/stream` with `Last-Event-ID`. Saves the screenshot as
//! `target/dashboard.png`, or as the README's `docs/dashboard.png` with
//! `FLEET_UPDATE_SCREENSHOT=1` (so that a test run leaves the checkout clean).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::TestStack;

use webdriver::Browser;

/// Vehicles launched.
const VEHICLES: u64 = 5;

/// A minimal W3C WebDriver client over HTTP, enough to open a page, run a script and take a
/// screenshot.
mod webdriver {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use base64::Engine as _;
    use serde_json::{Value, json};

    /// A chromedriver process (in a process group of its own) with one headless session.
    pub struct Browser {
        http: reqwest::Client,
        session: String,
        driver: tokio::process::Child,
    }

    impl Browser {
        /// Starts `chromedriver` on a free port and opens a headless Chromium session with a
        /// `width` x `height` window.
        pub async fn start(width: u32, height: u32) -> Self {
            let port = super::support::free_port();
            let driver = tokio::process::Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .expect("chromedriver runs (Debian package chromium-driver)");
            let http = reqwest::Client::new();
            let base = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while http.get(format!("{base}/status")).send().await.is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "chromedriver did not answer within 20 s"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let capabilities = json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", format!("--window-size={width},{height}")]
                }
            }}});
            let created: Value = http
                .post(format!("{base}/session"))
                .json(&capabilities)
                .send()
                .await
                .expect("new session request")
                .json()
                .await
                .expect("new session answer");
            let id = created["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {created}"));
            Self {
                session: format!("{base}/session/{id}"),
                http,
                driver,
            }
        }

        async fn call(&self, request: reqwest::RequestBuilder) -> Value {
            let answer: Value = request
                .send()
                .await
                .expect("WebDriver request")
                .json()
                .await
                .expect("WebDriver answer");
            assert!(
                answer["value"].get("error").is_none(),
                "WebDriver error: {answer}"
            );
            answer["value"].clone()
        }

        /// Opens `url`.
        pub async fn goto(&self, url: &str) {
            let url_request = self.http.post(format!("{}/url", self.session));
            self.call(url_request.json(&json!({ "url": url }))).await;
        }

        /// The value of `script` (a function body) run in the page.
        pub async fn eval(&self, script: &str) -> Value {
            let request = self.http.post(format!("{}/execute/sync", self.session));
            self.call(request.json(&json!({ "script": script, "args": [] })))
                .await
        }

        /// A PNG of the window.
        pub async fn screenshot(&self) -> Vec<u8> {
            let shot = self
                .call(self.http.get(format!("{}/screenshot", self.session)))
                .await;
            base64::engine::general_purpose::STANDARD
                .decode(shot.as_str().expect("base64 screenshot"))
                .expect("valid base64")
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            // End the process group we started (chromedriver and the Chromium it launched),
            // also after a failed assertion.
            if let Some(pid) = self.driver.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

/// Polls `probe` every 500 ms until it gives `Some`, for at most `patience`.
async fn wait_for<T, F, Fut>(what: &str, patience: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < patience,
            "{what}: not within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A counter of the page (its `data-value`).
async fn counter(browser: &Browser, id: &str) -> i64 {
    let script = format!("return Number(document.getElementById('{id}').dataset.value);");
    browser.eval(&script).await.as_i64().expect("a number")
}

/// What the page shows: stored, vehicles and per make `(make, vehicles, events)`.
async fn page_figures(browser: &Browser) -> (i64, i64, Vec<(String, i64, i64)>) {
    let makes = browser
        .eval(
            "return Array.from(document.querySelectorAll('#makes tbody tr')).map(function (tr) {
               return [tr.dataset.make, Number(tr.dataset.vehicles), Number(tr.dataset.events)];
             });",
        )
        .await;
    let makes = makes
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().expect("make").to_owned(),
                r[1].as_i64().expect("vehicles"),
                r[2].as_i64().expect("events"),
            )
        })
        .collect();
    (
        counter(browser, "stored").await,
        counter(browser, "vehicles-total").await,
        makes,
    )
}

/// One Server-Sent Event: `(id, event, data)`.
type SseEvent = (u64, String, Value);

/// The first `n` events of `GET /events/stream`, sent with `last_event_id`.
async fn stream_events(url: &str, last_event_id: Option<u64>, n: usize) -> Vec<SseEvent> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let mut response = request.send().await.expect("stream request");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an event within 10 s")
            .expect("stream readable")
            .expect("stream still open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if let Some(id) = id {
                let data = serde_json::from_str(&data).expect("JSON data");
                events.push((id, event, data));
            }
        }
    }
    events.truncate(n);
    events
}

/// `GET /events/stream`: a snapshot first, deltas after it, exactly the missed deltas after a
/// reconnect with `Last-Event-ID`, and a snapshot again for an id too old to resume.
async fn assert_stream_resumes(events_url: &str) {
    let url = format!("{events_url}/stream");
    let first = stream_events(&url, None, 3).await;
    let (snapshot_id, kind, snapshot) = &first[0];
    assert_eq!(kind, "snapshot");
    assert!(snapshot["trails"].is_object(), "a snapshot has the trails");
    assert_eq!(snapshot["id"].as_u64(), Some(*snapshot_id));
    for (i, (id, kind, _)) in first.iter().enumerate().skip(1) {
        assert_eq!(kind, "delta");
        assert_eq!(
            *id,
            snapshot_id + i as u64,
            "ids increase by one per update"
        );
    }
    let resumed = stream_events(&url, Some(*snapshot_id), 2).await;
    assert_eq!(
        resumed
            .iter()
            .map(|(id, kind, _)| (*id, kind.as_str()))
            .collect::<Vec<_>>(),
        [(snapshot_id + 1, "delta"), (snapshot_id + 2, "delta")],
        "resumed right after the last event id"
    );
    assert_eq!(
        resumed[0].2["vehicles"], first[1].2["vehicles"],
        "the same delta"
    );
    let too_old = stream_events(&url, Some(1), 1).await;
    assert_eq!(too_old[0].1, "snapshot", "an id too old gets a snapshot");
    assert!(too_old[0].0 >= first[2].0);
}

/// `GET /events` with `Accept: application/json`.
async fn events_json(url: &str) -> Value {
    reqwest::Client::new()
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET /events as JSON")
        .json()
        .await
        .expect("JSON")
}

/// The consumer's lag over all partitions, from `fleet status --json`.
async fn consumer_lag(stack: &TestStack) -> Option<i64> {
    let output = stack.fleet_quiet(&["status", "--json"]).await;
    let status: Value = serde_json::from_slice(&output.stdout).ok()?;
    let lags = status["consumer_lag"].as_array()?;
    Some(lags.iter().filter_map(|l| l["lag"].as_i64()).sum())
}

/// `(stored, vehicles, per make (make, vehicles, events))` by SQL over `diag`.
async fn sql_figures(db: &tokio_postgres::Client) -> (i64, i64, Vec<(String, i64, i64)>) {
    let totals = db
        .query_one("SELECT count(*), count(DISTINCT vin) FROM diag", &[])
        .await
        .expect("count diag");
    let makes = db
        .query(
            "SELECT make::text, count(DISTINCT vin), count(*) FROM diag GROUP BY make ORDER BY make",
            &[],
        )
        .await
        .expect("count per make")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    (totals.get(0), totals.get(1), makes)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_live_fleet_and_matches_postgres() {
    let stack = &TestStack::new("dash", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", &VEHICLES.to_string()])
        .await;
    let url = stack.events_url();

    let browser = &Browser::start(1440, 1280).await;
    browser.goto(&url).await;
    wait_for(
        "the page's first update",
        Duration::from_secs(30),
        move || async move {
            let id = browser
                .eval("return document.body.dataset.lastEventId;")
                .await;
            id.as_str().filter(|id| !id.is_empty()).map(|_| ())
        },
    )
    .await;

    // The counter goes up while the vehicles run.
    let before = counter(browser, "received").await;
    let after = wait_for(
        "the received counter to increase",
        Duration::from_secs(30),
        move || async move {
            let now = counter(browser, "received").await;
            (now > before).then_some(now)
        },
    )
    .await;
    eprintln!("received counter: {before} -> {after}");

    // Every vehicle shows up in the table and on the map.
    let drawn = wait_for(
        "every vehicle in the table and on the map",
        Duration::from_secs(90),
        move || async move {
            let rows = browser
                .eval("return document.querySelectorAll('#vehicles tbody tr[data-vin]').length;")
                .await
                .as_u64()?;
            let drawn = browser
                .eval("return Number(document.getElementById('map').dataset.drawn);")
                .await
                .as_u64()?;
            (rows == VEHICLES && drawn == VEHICLES).then_some(drawn)
        },
    )
    .await;
    assert_eq!(drawn, VEHICLES);
    let vins = browser
        .eval(
            "return Array.from(document.querySelectorAll('#vehicles tbody tr')).map(function (tr) {
               return tr.dataset.vin; });",
        )
        .await;
    assert!(
        vins.as_array()
            .expect("VINs")
            .iter()
            .all(|v| v.as_str().is_some_and(|v| v.len() == 17)),
        "{vins}"
    );

    // Let the trails and the chart grow, then keep the picture for the README.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let folder = if std::env::var_os("FLEET_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
    };
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    let screenshot = folder.join("dashboard.png");
    std::fs::write(&screenshot, &png).expect("write the screenshot");
    eprintln!(
        "screenshot: {} bytes in {}",
        png.len(),
        screenshot.display()
    );

    // The JSON of the same URL.
    let json = events_json(&url).await;
    assert!(json["events_received"].as_i64() >= Some(after), "{json}");
    assert_eq!(json["vehicles_total"].as_u64(), Some(VEHICLES), "{json}");
    assert_eq!(
        json["vehicles"].as_array().map(Vec::len),
        Some(VEHICLES as usize)
    );
    assert!(
        json["per_second"].as_array().is_some_and(|s| !s.is_empty()),
        "{json}"
    );
    assert!(
        json["histograms"].as_array().is_some_and(|h| !h.is_empty()),
        "{json}"
    );
    assert!(json["map"]["radius_m"].as_f64() > Some(0.0));

    assert_stream_resumes(&url).await;

    // Stop the fleet and let the consumer catch up: then the page equals SQL over `diag`.
    stack.fleet_ok(&["teardown", "--fleet-only"]).await;
    wait_for(
        "the consumer to catch up",
        Duration::from_secs(120),
        move || async move { (consumer_lag(stack).await? == 0).then_some(()) },
    )
    .await;
    let db = stack.postgres().await;
    let expected = sql_figures(&db).await;
    eprintln!("SQL over diag: {expected:?}");
    let expected = &expected;
    assert_eq!(expected.1, VEHICLES as i64);
    let shown = wait_for(
        "the page to show what PostgreSQL holds",
        Duration::from_secs(30),
        move || async move {
            let shown = page_figures(browser).await;
            (&shown == expected).then_some(shown)
        },
    )
    .await;
    assert_eq!(&shown, expected);
    let json = events_json(&url).await;
    assert_eq!(json["events_stored"].as_i64(), Some(expected.0), "{json}");
}
