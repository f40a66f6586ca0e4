//! Who may do what: every REST endpoint and the WebSocket refuse the signed
//! out, other organizations, non-participants and non-administrators; cookie
//! sessions need the CSRF token; sessions end when they should; guessing
//! passwords is braked.

mod cookies;
mod endpoints;
mod organizations;
mod participants;
mod rate_limit;
mod sessions;

use crate::common::Answer;
use std::collections::BTreeSet;

fn set_cookies(a: &Answer) -> Vec<String> {
    a.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn cookie_attributes(cookie: &str) -> BTreeSet<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}
