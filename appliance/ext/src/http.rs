//! The outgoing HTTP of `hook-http` extensions: the guest builds requests with
//! `wasi:http`, the host decides and sends them. Only URLs under the operator's
//! `http_allow` prefixes go out (anything else fails with
//! `http-request-denied` before a connection is made), at most
//! [`MAX_REQUESTS`] per call, with no redirects followed (the sender does not
//! follow them), and every wait bounded by what is left of the call's
//! deadline. The sending itself is wasmtime-wasi-http's (hyper and rustls with
//! the Mozilla roots): nothing here is hand-written but the policy.
//!
//! A fixture may answer requests itself ([`CannedHttp`]) so an author can test
//! the path through a service's answer offline: the allowlist still applies,
//! and nothing reaches the network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;
use wasmtime_wasi_http::{
    default_send_request, Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks,
};

use crate::output::url_allowed;

/// Requests one call may make.
pub const MAX_REQUESTS: u32 = 8;

/// An answer a fixture gives in place of the network (`"http": [...]` in a
/// fixture file). The first entry whose `url` matches (exactly, or as a
/// prefix when it ends in `*`) and whose `method` matches (any when unset)
/// answers; a request no entry matches is denied.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedHttp {
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
}

fn ok_status() -> u16 {
    200
}

impl CannedHttp {
    fn answers(&self, method: &http::Method, url: &str) -> bool {
        let url_matches = match self.url.strip_suffix('*') {
            Some(prefix) => url.starts_with(prefix),
            None => url == self.url,
        };
        url_matches
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
    }

    fn response(&self) -> Result<http::Response<WasiBody>, HttpError> {
        let mut r = http::Response::builder().status(self.status);
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        let body = http_body_util::Full::new(Bytes::from(self.body.clone()))
            .map_err(|never| match never {})
            .boxed_unsync();
        r.body(body)
            .map_err(|e| HttpError::InternalError(Some(format!("canned answer: {e}"))))
    }
}

/// Where a call's `wasi:http` requests may go.
#[derive(Clone, Default)]
pub(crate) struct HttpGrant {
    /// Empty: every request is denied (other worlds, self-tests).
    pub allow: Arc<[String]>,
    /// Answered from these instead of the network (fixtures).
    pub canned: Option<Arc<[CannedHttp]>>,
}

/// One call's HTTP policy (a fresh one per Store).
pub(crate) struct HttpPolicy {
    ext: Arc<str>,
    grant: HttpGrant,
    /// When the call's deadline passes.
    deadline: Instant,
    left: u32,
}

impl HttpPolicy {
    pub fn new(ext: Arc<str>, grant: HttpGrant, deadline: Instant) -> HttpPolicy {
        HttpPolicy {
            ext,
            grant,
            deadline,
            left: MAX_REQUESTS,
        }
    }

    /// Why `request` may not go out, or `None` if it may.
    fn refuse(&self, uri: &http::Uri) -> Option<String> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Some(format!("{uri} is not an absolute http(s) URL"));
        };
        if authority.as_str().contains('@') {
            return Some(format!("{uri} carries user info"));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{scheme}://{authority}{path}");
        if !self.grant.allow.iter().any(|p| url_allowed(&url, p)) {
            return Some(format!("{url} is not under this extension's http_allow"));
        }
        if self.left == 0 {
            return Some(format!("more than {MAX_REQUESTS} requests in one call"));
        }
        None
    }
}

/// The guest's timeout, if it set one and it is shorter, else what is left.
fn within(asked: Option<Duration>, left: Duration) -> Option<Duration> {
    Some(asked.map_or(left, |a| a.min(left)))
}

type ResponseFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let method = request.method().clone();
        let uri = request.uri().clone();
        if let Some(why) = self.refuse(&uri) {
            tracing::warn!(extension = &*self.ext, %method, %uri, "HTTP request denied: {why}");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        self.left -= 1;
        if let Some(canned) = &self.grant.canned {
            let answer = canned
                .iter()
                .find(|c| c.answers(&method, &uri.to_string()))
                .map(CannedHttp::response);
            tracing::info!(extension = &*self.ext, %method, %uri, answered = answer.is_some(), "HTTP request answered by the fixture");
            let body = request.into_body();
            return Box::new(async move {
                // The guest writes its body after `handle` returns: take it
                // (and drop it), as a server would, so its writes succeed.
                let _ = body.collect().await;
                let response = answer.unwrap_or(Err(HttpError::HttpRequestDenied))?;
                Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn std::future::Future<Output = _> + Send>,
                ))
            });
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        let options = RequestOptions {
            connect_timeout: within(options.and_then(|o| o.connect_timeout), left),
            first_byte_timeout: within(options.and_then(|o| o.first_byte_timeout), left),
            between_bytes_timeout: within(options.and_then(|o| o.between_bytes_timeout), left),
        };
        let ext = self.ext.clone();
        Box::new(async move {
            let sent = tokio::time::timeout(left, default_send_request(request, Some(options)));
            match sent.await {
                Ok(Ok((response, io))) => {
                    tracing::info!(extension = &*ext, %method, %uri, status = response.status().as_u16(), "HTTP request");
                    Ok((
                        response.map(BodyExt::boxed_unsync),
                        Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
                    ))
                }
                Ok(Err(e)) => {
                    tracing::warn!(extension = &*ext, %method, %uri, error = ?e, "HTTP request failed");
                    Err(e)
                }
                Err(_) => {
                    tracing::warn!(extension = &*ext, %method, %uri, "HTTP request ran past the call's deadline");
                    Err(HttpError::HttpResponseTimeout)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> HttpPolicy {
        let grant = HttpGrant {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            canned: None,
        };
        HttpPolicy::new("t".into(), grant, Instant::now() + Duration::from_secs(1))
    }

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn requests_go_only_under_an_allowed_prefix() {
        let p = policy(&[
            "http://127.0.0.1:9000/catalog/",
            "https://assets.example.net",
        ]);
        assert_eq!(
            p.refuse(&uri("http://127.0.0.1:9000/catalog/new?x=1")),
            None
        );
        assert_eq!(p.refuse(&uri("https://assets.example.net/v1")), None);
        assert_eq!(p.refuse(&uri("https://assets.example.net")), None);
        for bad in [
            "http://127.0.0.1:9000/admin",
            "http://127.0.0.1:9001/catalog/",
            "https://assets.example.net.evil.org/",
            "https://assets.example.net@169.254.169.254/",
            "http://169.254.169.254/latest/meta-data/",
            "/catalog/relative",
        ] {
            assert!(p.refuse(&uri(bad)).is_some(), "{bad} was let through");
        }
        assert!(policy(&[])
            .refuse(&uri("http://127.0.0.1:9000/catalog/"))
            .is_some());
    }

    #[test]
    fn a_call_makes_a_bounded_number_of_requests() {
        let mut p = policy(&["http://h/"]);
        p.left = 0;
        let why = p.refuse(&uri("http://h/x")).unwrap();
        assert!(why.contains("requests in one call"), "{why}");
    }

    #[test]
    fn canned_answers_match_by_url_and_method() {
        let c: CannedHttp = serde_json::from_str(
            r#"{"url": "http://h/assets*", "method": "post", "status": 201, "body": "{}"}"#,
        )
        .unwrap();
        assert!(c.answers(&http::Method::POST, "http://h/assets/7"));
        assert!(!c.answers(&http::Method::GET, "http://h/assets/7"));
        assert!(!c.answers(&http::Method::POST, "http://h/other"));
        let exact: CannedHttp = serde_json::from_str(r#"{"url": "http://h/x"}"#).unwrap();
        assert!(exact.answers(&http::Method::GET, "http://h/x"));
        assert!(!exact.answers(&http::Method::GET, "http://h/x/y"));
        assert_eq!(exact.response().unwrap().status(), 200);
    }

    #[test]
    fn timeouts_never_outlast_the_deadline() {
        let left = Duration::from_millis(300);
        assert_eq!(within(None, left), Some(left));
        assert_eq!(within(Some(Duration::from_secs(600)), left), Some(left));
        let short = Duration::from_millis(5);
        assert_eq!(within(Some(short), left), Some(short));
    }
}
