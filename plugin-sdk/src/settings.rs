//! The plugin's own settings, set by the operator in `config.json` under the
//! plugin's entry. A plugin cannot read another plugin's settings.
//!
//! Settings are read from the host on every call (the operator may change
//! them while instances stay warm).

use std::str::FromStr;

use crate::__bindings::plinth::plugin::settings as wit;

/// The value for `key`, or `None` when the operator has not set it.
pub fn get(key: &str) -> Option<String> {
    crate::guest_only("settings::get");
    wit::get(key)
}

/// The value for `key` parsed as `T`, or `default` when it is unset. A value
/// that does not parse is logged as a warning and `default` is used.
///
/// ```no_run
/// let threshold: i64 = plinth_sdk::settings::get_or("low_stock_threshold", 5);
/// ```
pub fn get_or<T: FromStr>(key: &str, default: T) -> T {
    match get(key) {
        None => default,
        Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
            crate::log::warn(&format!(
                "setting `{key}` = {raw:?} does not parse; using the default"
            ));
            default
        }),
    }
}
