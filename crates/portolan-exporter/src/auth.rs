//! Basic authentication against bcrypt hashes.
//!
//! bcrypt is slow on purpose, so verifications run on blocking threads, two at a time,
//! and a password that verified is remembered per user (a scrape every few seconds
//! would otherwise cost a bcrypt each). Unknown users cost a bcrypt too, so timing does
//! not tell which users exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::sync::Semaphore;

pub(crate) struct Auth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashMap<String, Vec<u8>>>,
    slots: Semaphore,
}

impl Auth {
    pub(crate) fn new(users: BTreeMap<String, String>) -> Option<Arc<Auth>> {
        (!users.is_empty()).then(|| {
            Arc::new(Auth {
                users,
                verified: Mutex::new(HashMap::new()),
                slots: Semaphore::new(2),
            })
        })
    }

    /// Whether the `Authorization` header value names a user with the right password.
    pub(crate) async fn check(self: &Arc<Self>, header: Option<&[u8]>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        if let Some(known) = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&user).cloned())
        {
            if constant_eq(&known, password.as_bytes()) {
                return true;
            }
        }
        let (hash, exists) = match self.users.get(&user) {
            Some(h) => (h.clone(), true),
            // Same cost as a real user's check.
            None => (
                self.users.values().next().cloned().unwrap_or_default(),
                false,
            ),
        };
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let pw = password.clone();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pw, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok && exists {
            if let Ok(mut m) = self.verified.lock() {
                m.insert(user, password.into_bytes());
            }
        }
        ok && exists
    }
}

fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, rest) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        assert_eq!(
            parse_basic(b"Basic YWxpY2U6czNjcjN0"),
            Some(("alice".into(), "s3cr3t".into()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
        assert_eq!(parse_basic(b"Basic YWxpY2U="), None);
    }

    #[tokio::test]
    async fn wrong_and_unknown_users_fail_right_one_passes() {
        let mut users = BTreeMap::new();
        users.insert("alice".to_string(), bcrypt::hash("s3cr3t", 4).unwrap());
        let a = Auth::new(users).unwrap();
        let h = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(a.check(Some(h("alice", "s3cr3t").as_bytes())).await);
        assert!(
            a.check(Some(h("alice", "s3cr3t").as_bytes())).await,
            "cached"
        );
        assert!(!a.check(Some(h("alice", "wrong").as_bytes())).await);
        assert!(!a.check(Some(h("bob", "s3cr3t").as_bytes())).await);
        assert!(!a.check(None).await);
    }
}
