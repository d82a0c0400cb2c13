//! Health, readiness, metrics and unknown routes.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call_with(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, body) = app.call_with(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let backend = if postgres_url().is_some() { "postgres" } else { "sqlite" };
    assert_eq!(body["database"], backend);
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/oidc-clients/some-id").await;
    app.get("/api/v1/oidc-clients/some%20other%2Fid").await;
    app.get("/api/v2/nothing").await;
    app.get("/api/v2/nothing/else").await;
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    // Captured segments become their names, encoded or not; paths no route matched share one label.
    assert!(
        text.contains(
            "tandem_http_requests_total{method=\"GET\",route=\"/api/v1/oidc-clients/{id}\",status=\"404\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("tandem_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 2"), "{text}");
    assert!(!text.contains("nothing"), "{text}");
    assert!(text.contains("tandem_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v2/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "RouteNotFound");
}
