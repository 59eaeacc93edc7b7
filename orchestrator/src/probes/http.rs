//! HTTP readiness: a GET that must answer 200.

use std::time::Duration;

use super::ProbeError;

/// Ok when `GET url` answers 200 within 3 s.
pub async fn http_ok(url: &str) -> Result<(), ProbeError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| ProbeError::new(format!("HTTP client: {e}")))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| ProbeError::new(format!("GET {url}: {e}")))?;
    if response.status() == reqwest::StatusCode::OK {
        Ok(())
    } else {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(ProbeError::new(format!(
            "GET {url} answered {status}: {}",
            body.chars().take(200).collect::<String>()
        )))
    }
}
