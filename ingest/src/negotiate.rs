//! Content negotiation for `GET /events`: JSON or HTML, decided by the `Accept` header with its
//! quality values. Ties and a missing header go to HTML, the browser's answer.

/// Whether a client sending `accept` should get JSON rather than HTML.
pub fn prefers_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let json = quality(accept, "application", "json");
    let html = quality(accept, "text", "html");
    json > html
}

/// The quality `accept` gives to `kind/sub`: the most specific matching range wins
/// (`kind/sub` over `kind/*` over `*/*`); 0 when nothing matches.
fn quality(accept: &str, kind: &str, sub: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let Some((k, s)) = media.split_once('/') else {
            continue;
        };
        let specificity = match (k.trim(), s.trim()) {
            (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub) => 2,
            (k, "*") if k.eq_ignore_ascii_case(kind) => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, value)| value.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        if best.is_none_or(|(spec, _)| specificity > spec) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_defaults_get_html() {
        for accept in [
            None,
            Some("*/*"),
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Some("text/html, application/json"),
            Some("garbage"),
        ] {
            assert!(!prefers_json(accept), "{accept:?}");
        }
    }

    #[test]
    fn programs_get_json() {
        for accept in [
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("text/html;q=0.5, application/json"),
            Some("application/*"),
            Some("*/*;q=0.1, application/json"),
        ] {
            assert!(prefers_json(accept), "{accept:?}");
        }
    }

    #[test]
    fn the_most_specific_range_wins() {
        assert!(!prefers_json(Some("application/json;q=0, */*")));
    }
}
