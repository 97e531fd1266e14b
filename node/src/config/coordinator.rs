//! The coordinator's address and the name on its certificate: the checks
//! applied to them alike whether they come from the node file or a flag.

/// The coordinator address must be `https://host[:port]`, as
/// `medfed_tls::connect` requires; checked here so that a typo is a
/// configuration error found before anything starts.
///
/// # Errors
/// What is wrong with it.
pub fn check_address(address: &str) -> Result<(), String> {
    let expected = "expected https://host:port, e.g. https://coordinator.example.org:7443";
    let uri: tonic::codegen::http::Uri = address
        .parse()
        .map_err(|e| format!("not a URL ({e}); {expected}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("the scheme must be https; {expected}"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("no host; {expected}"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!("a path is not allowed; {expected}"));
    }
    Ok(())
}

/// The server name must be a DNS name or an IP address (what the
/// coordinator's certificate must carry).
///
/// # Errors
/// What is wrong with it.
pub fn check_server_name(name: &str) -> Result<(), String> {
    rustls_pki_types::ServerName::try_from(name.to_owned())
        .map(|_| ())
        .map_err(|_| "expected a DNS name or an IP address, e.g. coordinator.example.org".into())
}
