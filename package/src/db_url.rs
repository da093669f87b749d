//! Database URLs as the host and the vendor server show them: the password
//! in `scheme://user:password@host/db` is hidden before a URL reaches a log
//! line, an error message or a `Debug` print.

/// `postgres://user:pw@host/db` → `postgres://user:{mask}@host/db`. A URL
/// without a password comes back unchanged.
pub fn redact_password(url: &str, mask: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{mask}@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// [`redact_password`] with the mask logs use, `***`.
pub fn redact_url(url: &str) -> String {
    redact_password(url, "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_is_hidden() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(
            redact_password("mysql://u:p@ss@h/d?x=@", "<redacted>"),
            "mysql://u:<redacted>@h/d?x=@"
        );
        assert_eq!(redact_url("mysql://root@h/d"), "mysql://root@h/d");
        assert_eq!(redact_url("sqlite://data/p.db"), "sqlite://data/p.db");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
