//! Property tests: no byte string from the network or an operator makes anything panic.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use wa_verify_core::config::{duration, StackConfig};
use wa_verify_core::rate_limit::Rate;
use wa_verify_core::{
    ApiVersion, CodeMethod, GraphApiError, Language, PhoneNumberId, ResponseMeta, VerificationCode,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_error_body_parses_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = GraphApiError::from_body(&body);
    }

    #[test]
    fn any_json_like_error_body_is_safe(s in r#"\{"error":\{("[a-z_]{1,12}":("[^"]{0,20}"|-?[0-9]{1,20}|true|null|\{\}|\[\]),?){0,8}\}\}"#) {
        let _ = GraphApiError::from_body(s.as_bytes());
    }

    #[test]
    fn any_header_values_are_read_without_panicking(
        trace in proptest::collection::vec(any::<u8>(), 0..64),
        retry in proptest::collection::vec(any::<u8>(), 0..64),
        usage in proptest::collection::vec(any::<u8>(), 0..256),
        retry_text in "[ -~]{0,40}",
        usage_text in r#"\{"[0-9]{1,5}":\[\{"estimated_time_to_regain_access":-?[0-9]{0,30}(\.[0-9]{0,5})?(e[0-9]{1,3})?\}\]\}"#,
    ) {
        let mut h = HeaderMap::new();
        for (name, value) in [("x-fb-trace-id", &trace), ("retry-after", &retry), ("x-app-usage", &usage)] {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                h.insert(name, v);
            }
        }
        let _ = ResponseMeta::from_headers(&h, SystemTime::now());
        let mut h2 = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&retry_text) {
            h2.insert("retry-after", v);
        }
        if let Ok(v) = HeaderValue::from_str(&usage_text) {
            h2.insert("x-business-use-case-usage", v);
        }
        let m = ResponseMeta::from_headers(&h2, SystemTime::now());
        if let Some(w) = m.wait_hint() {
            // Server hints are clamped to 72 hours, Meta's longest documented block.
            prop_assert!(w <= std::time::Duration::from_secs(72 * 3600));
        }
    }

    #[test]
    fn any_operator_value_is_validated_without_panicking(s in any::<String>()) {
        let _ = s.parse::<PhoneNumberId>();
        let _ = s.parse::<Language>();
        let _ = s.parse::<CodeMethod>();
        let _ = s.parse::<ApiVersion>();
        let _ = s.parse::<VerificationCode>();
        let _ = s.parse::<Rate>();
        let _ = duration::parse(&s);
        let _ = s.parse::<wa_verify_core::graph::BaseUrl>();
        let _ = s.parse::<wa_verify_core::auth::Token>();
        let _ = StackConfig::from_toml(&s);
    }

    #[test]
    fn config_shaped_text_is_validated_without_panicking(
        rate in "[0-9]{0,12}/[a-z0-9]{0,4}",
        dur in "[0-9.]{0,8}[a-z]{0,4}",
        n in any::<i64>(),
    ) {
        let text = format!(
            "[timeouts]\nattempt = \"{dur}\"\n[retry]\nmax_attempts = {n}\n[rate_limit]\nper_number = [{{ rate = \"{rate}\", burst = {n} }}]\n"
        );
        if let Ok(cfg) = StackConfig::from_toml(&text) {
            let _ = cfg.retry.policy(cfg.timeouts.deadline);
            let _ = cfg.rate_limit.layer();
        }
    }
}

/// The boundary's decoder over every status and any body, through the public Graph service.
#[test]
fn any_status_and_body_decode_to_a_typed_outcome() {
    use bytes::Bytes;
    use http_body_util::Full;
    use tower::{service_fn, ServiceExt};
    use wa_verify_core::graph::Graph;
    use wa_verify_core::{Error, RequestCode};

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(100u16..600, proptest::collection::vec(any::<u8>(), 0..300)),
            |(status, body)| {
                let http = service_fn(move |_req: http::Request<Full<Bytes>>| {
                    let body = body.clone();
                    async move {
                        let mut res = http::Response::new(Full::new(Bytes::from(body)));
                        *res.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, Error>(res)
                    }
                });
                let graph = Graph::new(http, "http://127.0.0.1:1".parse().unwrap());
                let op =
                    RequestCode::new("1".parse().unwrap(), CodeMethod::Sms, Language::default());
                let _ = rt.block_on(graph.oneshot(op));
                Ok(())
            },
        )
        .unwrap();
}
