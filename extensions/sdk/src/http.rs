//! Blocking HTTP requests for `hook-http` extensions, over `wasi:http`. The
//! host sends them, and only to the URL prefixes the operator allowed
//! (`http_allow`); a request anywhere else fails with
//! `HttpRequestDenied` before a connection is made. Redirects are answered,
//! not followed. An extension using this is exported with `export_hook!` like
//! any hook and declared with `world = "hook-http"` (and `http-allow`).
//!
//! ```ignore
//! let r = edgerec_ext_sdk::http::post(url, "application/json", body.as_bytes())?;
//! if r.status / 100 != 2 { return Err(ExtError::Failed(format!("catalog said {}", r.status))) }
//! ```

use crate::http_imports::wasi::http::outgoing_handler;
use crate::http_imports::wasi::http::types::{
    Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::http_imports::wasi::io::streams::StreamError;

/// The most of a response body read into memory.
pub const MAX_BODY: usize = 1 << 20;

/// A response, its body read whole (at most [`MAX_BODY`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A GET of `url`.
pub fn get(url: &str) -> Result<Response, String> {
    request("GET", url, &[], &[])
}

/// A POST of `body` to `url`.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Response, String> {
    request("POST", url, &[("content-type", content_type)], body)
}

/// A request: `method` (GET, POST, PUT, ...), an absolute `http(s)` URL,
/// headers, and a body (empty for none).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else {
        return Err(format!("{url}: not an http(s) URL"));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() { "/" } else { path };
    let fields = Fields::new();
    if !body.is_empty() {
        // A known length, not chunked: what most receivers expect.
        fields
            .append("content-length", body.len().to_string().as_bytes())
            .map_err(|e| format!("content-length: {e:?}"))?;
    }
    for (k, v) in headers {
        fields
            .append(k, v.as_bytes())
            .map_err(|e| format!("header {k}: {e:?}"))?;
    }
    let req = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    };
    let bad = |what: &str| format!("{url}: invalid {what}");
    req.set_method(&method).map_err(|()| bad("method"))?;
    req.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
    req.set_authority(Some(authority))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    let out = req.body().map_err(|()| bad("body"))?;
    let pending = outgoing_handler::handle(req, None).map_err(|e| format!("{url}: {e:?}"))?;
    // A body that cannot be sent is reported after the response, which says
    // why when the host refused the request (`HttpRequestDenied`).
    let sent = send_body(&out, body)
        .and_then(|()| OutgoingBody::finish(out, None).map_err(|e| format!("{e:?}")));
    let response = loop {
        if let Some(r) = pending.get() {
            break r;
        }
        pending.subscribe().block();
    };
    let response = response
        .map_err(|()| format!("{url}: response taken twice"))?
        .map_err(|e| format!("{url}: {e:?}"))?;
    sent.map_err(|e| format!("{url}: sending the body: {e}"))?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let incoming = response.consume().map_err(|()| format!("{url}: no body"))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| format!("{url}: no body stream"))?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(format!("{url}: response body over {MAX_BODY} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("{url}: reading the body: {e:?}")),
            }
        }
    }
    IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn send_body(out: &OutgoingBody, body: &[u8]) -> Result<(), String> {
    let stream = out.write().map_err(|()| "no body stream".to_string())?;
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}
