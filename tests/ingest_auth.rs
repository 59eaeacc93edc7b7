//! ingest's bearer tokens and per-vehicle rate limit, configured through `config.master.toml`
//! keys and wired by `fleet` into a real stack: no or bad token gives 401 with
//! `WWW-Authenticate` (before the body is read: a client announcing 1 MB and sending nothing is
//! answered at once), a token used for another vehicle gives 403, a vehicle over its rate gets
//! 429 with `Retry-After`, and the dashboard and its stream need a `dashboard` token (as a
//! bearer token or `?access_token=`): 401 without, 403 with a vehicle's.

mod support;

use fleet_common::{EventTime, TelemetryEvent, Vin};
use support::TestStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const TOKEN: &str = "token-for-vehicle-one-0123";
const DASHBOARD_TOKEN: &str = "token-for-the-dashboard-0123";

fn event(vin: &Vin) -> TelemetryEvent {
    TelemetryEvent::example(
        Uuid::new_v4(),
        vin.clone(),
        0,
        EventTime(chrono::Utc::now()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_rate_limit_hold_on_a_real_stack() {
    let vin = Vin::from_serial("YV1", 1);
    let other = Vin::from_serial("YV1", 2);
    let tokens = std::env::temp_dir().join(format!("fleet-tokens-{}", std::process::id()));
    std::fs::write(
        &tokens,
        format!("# vehicle tokens\n{vin} {TOKEN}\ndashboard {DASHBOARD_TOKEN}\n"),
    )
    .unwrap();
    let stack = TestStack::new(
        "ingest-auth",
        &[
            ("FLEET_INGEST__TOKENS_FILE", tokens.to_str().unwrap()),
            ("FLEET_INGEST__RATE_LIMIT_PER_VIN", "2"),
        ],
    );
    stack.fleet_ok(&["launch-infra"]).await;
    let http = reqwest::Client::new();
    let post = |body: TelemetryEvent, token: Option<&str>| {
        let mut request = http.post(stack.events_url()).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let none = post(event(&vin), None).await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        r#"Bearer realm="fleet-ingest""#
    );
    let bad = post(event(&vin), Some("not-the-right-token-at-all"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let foreign = post(event(&other), Some(TOKEN)).await.unwrap();
    assert_eq!(foreign.status(), 403, "a token used for another VIN");

    // Two events per second are allowed; a burst beyond gets 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = post(event(&vin), Some(TOKEN)).await.unwrap();
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some(), "429 carries Retry-After");

    // The token is checked before the body is read: headers promising 1 MB, and no body.
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", stack.ingest_port))
        .await
        .unwrap();
    raw.write_all(
        b"POST /events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(std::time::Duration::from_secs(3), raw.read_exact(&mut head))
        .await
        .expect("401 at once, without waiting for the body")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");

    // The dashboard shows every vehicle: it needs a dashboard token.
    for path in ["", "/stream"] {
        let url = format!("{}{path}", stack.events_url());
        let get = |token: Option<&str>| {
            let mut request = http.get(&url).header("accept", "application/json");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let none = get(None).await.unwrap();
        assert_eq!(none.status(), 401, "{url}");
        assert_eq!(
            none.headers()["www-authenticate"],
            r#"Bearer realm="fleet-ingest""#
        );
        assert_eq!(get(Some(TOKEN)).await.unwrap().status(), 403, "{url}");
        assert_eq!(
            get(Some(DASHBOARD_TOKEN)).await.unwrap().status(),
            200,
            "{url}"
        );
        let query = http
            .get(format!("{url}?access_token={DASHBOARD_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(query.status(), 200, "{url} with access_token");
    }
    std::fs::remove_file(&tokens).ok();
}
