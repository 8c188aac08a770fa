//! Where to connect: a `ws`/`wss`/`http`/`https` URL reduced to what the agent
//! needs (TLS or not, host, port, request path). [`crate::net::tls::open`]
//! turns an [`Endpoint`] into a byte stream.
//!
//! The parser is deliberately small: the agent only ever talks to URLs from
//! its own configuration, so it accepts `scheme://host[:port][/path][?query]`
//! and rejects everything else (user info, fragments, empty hosts, port 0)
//! with an error that says what is wrong.

/// The URL schemes the agent speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Ws,
    Wss,
    Http,
    Https,
}

impl Scheme {
    /// The URL spelling, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Whether the scheme runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Wss | Scheme::Https)
    }

    /// Whether the scheme is a WebSocket scheme (as opposed to HTTP).
    pub fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        if self.is_tls() { 443 } else { 80 }
    }

    fn from_url_prefix(scheme: &str) -> Option<Scheme> {
        match scheme.to_ascii_lowercase().as_str() {
            "ws" => Some(Scheme::Ws),
            "wss" => Some(Scheme::Wss),
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

/// Why a URL could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("url has no scheme (expected ws://, wss://, http:// or https://)")]
    MissingScheme,
    #[error("url scheme `{0}` is not supported (expected ws, wss, http or https)")]
    UnsupportedScheme(String),
    #[error("url has no host")]
    MissingHost,
    #[error("url must not contain user info (`user@`): credentials belong in api_key_env")]
    UserInfo,
    #[error("url must not contain a fragment (`#...`)")]
    Fragment,
    #[error("url port `{0}` is not a number in 1-65535")]
    BadPort(String),
    #[error("url host `{0}` is not valid")]
    BadHost(String),
}

/// A parsed URL: everything needed to open a connection and address requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether to wrap the stream in TLS (`wss`, `https`).
    pub tls: bool,
    /// Host name or IP address; IPv6 addresses without brackets.
    pub host: String,
    /// Explicit port, or the scheme's default.
    pub port: u16,
    /// Request path (with query, if any); always starts with `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses a `ws`, `wss`, `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        Self::parse_with_scheme(url).map(|(_, endpoint)| endpoint)
    }

    /// Parses a URL and also returns its scheme, for callers that accept only
    /// some schemes (the coordinator wants `ws`/`wss`, backends `http`/`https`).
    pub fn parse_with_scheme(url: &str) -> Result<(Scheme, Endpoint), EndpointError> {
        let url = url.trim();
        let (scheme_text, rest) = url.split_once("://").ok_or(EndpointError::MissingScheme)?;
        let scheme = Scheme::from_url_prefix(scheme_text)
            .ok_or_else(|| EndpointError::UnsupportedScheme(scheme_text.to_owned()))?;
        if rest.contains('#') {
            return Err(EndpointError::Fragment);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(EndpointError::UserInfo);
        }
        let (host, port) = split_host_port(authority, scheme.default_port())?;
        let path = if path_and_query.starts_with('/') {
            path_and_query.to_owned()
        } else {
            format!("/{path_and_query}")
        };
        Ok((
            scheme,
            Endpoint {
                tls: scheme.is_tls(),
                host,
                port,
                path,
            },
        ))
    }

    /// The value of an HTTP `Host` header: the host (bracketed when IPv6),
    /// plus `:port` when the port is not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `self.path` (without any trailing `/`) followed by `suffix`, which must
    /// start with `/`. Used to put `/v1/models` under a base URL's path.
    pub fn join_path(&self, suffix: &str) -> String {
        debug_assert!(suffix.starts_with('/'), "path suffix must start with `/`");
        format!("{}{suffix}", self.path.trim_end_matches('/'))
    }
}

/// Splits `host[:port]` or `[v6]:port`, applying `default_port`.
fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), EndpointError> {
    if authority.is_empty() {
        return Err(EndpointError::MissingHost);
    }
    let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (v6, after) = bracketed
            .split_once(']')
            .ok_or_else(|| EndpointError::BadHost(authority.to_owned()))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(EndpointError::BadHost(authority.to_owned()));
        }
        match after {
            "" => (v6, None),
            _ => (
                v6,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| EndpointError::BadHost(authority.to_owned()))?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(EndpointError::MissingHost);
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(EndpointError::BadHost(host.to_owned()));
    }
    let port = match port_text {
        None => default_port,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(EndpointError::BadPort(text.to_owned())),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// Proves default ports and the TLS flag follow the scheme.
    #[test]
    fn default_ports_follow_the_scheme() {
        assert_eq!(ep("ws://coordinator").port, 80);
        assert_eq!(ep("http://h").port, 80);
        assert_eq!(ep("wss://h").port, 443);
        assert_eq!(ep("https://h").port, 443);
        assert!(ep("wss://h").tls && ep("https://h").tls);
        assert!(!ep("ws://h").tls && !ep("http://h").tls);
    }

    /// Proves an explicit port, path and query are kept and an empty path becomes `/`.
    #[test]
    fn explicit_port_path_and_query_are_kept() {
        let e = ep("wss://coord.example.com:8443/agent/v2?x=1");
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "coord.example.com".into(),
                port: 8443,
                path: "/agent/v2?x=1".into()
            }
        );
        assert_eq!(ep("ws://coordinator:9000/").path, "/");
        assert_eq!(ep("ws://coordinator:9000").path, "/");
        assert_eq!(ep("http://h:1?q").path, "/?q");
    }

    /// Proves schemes are case-insensitive and reported to the caller.
    #[test]
    fn scheme_is_case_insensitive_and_reported() {
        let (scheme, e) = Endpoint::parse_with_scheme("HTTPS://api.venice.ai/api").expect("parses");
        assert_eq!(scheme, Scheme::Https);
        assert_eq!(e.path, "/api");
    }

    /// Proves IPv6 literals are stored bare and bracketed again in the Host header.
    #[test]
    fn ipv6_hosts_are_unbracketed_and_rebracketed_for_host_header() {
        let e = ep("http://[::1]:8080/x");
        assert_eq!((e.host.as_str(), e.port), ("::1", 8080));
        assert_eq!(e.host_header(), "[::1]:8080");
        assert_eq!(ep("https://[::1]").port, 443);
    }

    /// Proves the Host header carries the port only when it is not the default.
    #[test]
    fn host_header_omits_default_port() {
        assert_eq!(ep("https://openrouter.ai/api").host_header(), "openrouter.ai");
        assert_eq!(ep("http://127.0.0.1:8000").host_header(), "127.0.0.1:8000");
        assert_eq!(ep("http://h:80").host_header(), "h");
    }

    /// Proves API paths join under a base path without double slashes.
    #[test]
    fn join_path_avoids_double_slashes() {
        assert_eq!(
            ep("https://openrouter.ai/api").join_path("/v1/models"),
            "/api/v1/models"
        );
        assert_eq!(
            ep("https://openrouter.ai/api/").join_path("/v1/models"),
            "/api/v1/models"
        );
        assert_eq!(ep("http://h:1").join_path("/health"), "/health");
    }

    /// Proves each kind of malformed url gets its own specific error.
    #[test]
    fn bad_urls_get_specific_errors() {
        let err = |url: &str| Endpoint::parse(url).expect_err(url);
        assert_eq!(err("coordinator:9000"), EndpointError::MissingScheme);
        assert_eq!(err("ftp://h"), EndpointError::UnsupportedScheme("ftp".into()));
        assert_eq!(err("ws://"), EndpointError::MissingHost);
        assert_eq!(err("ws://:80"), EndpointError::MissingHost);
        assert_eq!(err("https://user:pw@h"), EndpointError::UserInfo);
        assert_eq!(err("https://h/#frag"), EndpointError::Fragment);
        assert_eq!(err("http://h:0"), EndpointError::BadPort("0".into()));
        assert_eq!(err("http://h:65536"), EndpointError::BadPort("65536".into()));
        assert_eq!(err("http://h:x"), EndpointError::BadPort("x".into()));
        assert_eq!(err("http://h:"), EndpointError::BadPort(String::new()));
        assert_eq!(err("http://[::1"), EndpointError::BadHost("[::1".into()));
        assert_eq!(err("http://[nope]:1"), EndpointError::BadHost("[nope]:1".into()));
        assert_eq!(err("http://a b"), EndpointError::BadHost("a b".into()));
    }

    /// Proves a url with credentials is rejected without echoing them.
    #[test]
    fn user_info_error_does_not_echo_credentials() {
        let message = Endpoint::parse("https://user:secret@h")
            .expect_err("rejected")
            .to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}
