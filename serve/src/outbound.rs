//! Calls the service makes to the platform: notice webhooks and the webhook
//! gateway. One client for both, with a timeout on every call
//! ([`OUTBOUND_TIMEOUT`]); plain HTTP only (this build carries no TLS: a
//! platform reaches it on loopback or a private network, or puts a
//! TLS-terminating proxy beside it).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest any outbound call may take, connecting included.
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// A URL the service calls: `http://HOST[:PORT]/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

/// Why a URL cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?}: {why}")]
pub struct BadEndpoint {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl FromStr for Endpoint {
    type Err = BadEndpoint;

    fn from_str(url: &str) -> Result<Self, BadEndpoint> {
        let bad = |why| BadEndpoint {
            url: url.to_owned(),
            why,
        };
        if url.starts_with("https://") {
            return Err(bad(
                "https is not built in: call a TLS-terminating proxy over http on loopback",
            ));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(bad("expected an http:// URL"));
        };
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            return Err(bad("expected a host after http://"));
        }
        Ok(Endpoint(url.to_owned()))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Endpoint {
    /// The URL.
    pub fn url(&self) -> &str {
        &self.0
    }
}

/// What an outbound call came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text (empty when it was not UTF-8).
    pub body: String,
}

/// The outbound client: every call bounded by [`OUTBOUND_TIMEOUT`], an error
/// status answered as a [`Reply`], not an error.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(OUTBOUND_TIMEOUT))
            .user_agent(concat!("recharge/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent }
    }
}

impl Client {
    /// POST a JSON `body` to `endpoint` with `headers`; `Err` when no answer
    /// came (refused, reset, timed out), with why.
    pub fn post_json(
        &self,
        endpoint: &Endpoint,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Reply, String> {
        let mut request = self
            .agent
            .post(endpoint.url())
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send(body).map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(crate::MAX_JSON_BODY as u64)
            .read_to_string()
            .unwrap_or_default();
        Ok(Reply { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_host_are_called() {
        assert!("http://127.0.0.1:9000/hooks".parse::<Endpoint>().is_ok());
        assert!("http://example.com".parse::<Endpoint>().is_ok());
        for bad in [
            "https://example.com/x",
            "ftp://example.com",
            "http://",
            "http:///x",
            "example.com",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
