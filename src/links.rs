//! Signed tokens: portal links (`/l/{token}`) and the reply tokens in `reply+TOKEN@` addresses.
//!
//! A link token is HMAC-SHA256 over a compact payload (purpose, subject, contact, expiry,
//! nonce), base64url. A reply token is short enough for an address's local part (at most 64
//! characters, and case-insensitive on the way back): 16 base32 characters of random id and 8
//! of MAC; the outbox row that holds it says which contact and message it belongs to. A
//! bounce token shares its message's id with a MAC of its own.
//!
//! Signed with `link_secret`; what the previous one signed (`previous_link_secret`) is still
//! checked, never signed.
//!
//! Near 600 lines, a quarter of them tests: every signed thing cport hands out is made and
//! checked here, so the purposes their MACs are bound to, and the keys that may check them,
//! are told apart in one place.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::model::Stoppable;

type HmacSha256 = Hmac<Sha256>;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Open a portal page signed in as the contact (magic link). Reusable until expiry.
    Open,
    /// Act once (delegated approval, password reset): the nonce is recorded when used.
    Once,
    /// Turn off one kind of email for the contact (a mail client's one-click unsubscribe).
    /// Works again and again until it expires, and signs nobody in.
    Unsubscribe,
}

impl Purpose {
    fn code(self) -> &'static str {
        match self {
            Purpose::Open => "o",
            Purpose::Once => "1",
            Purpose::Unsubscribe => "u",
        }
    }
    fn from_code(s: &str) -> Option<Purpose> {
        match s {
            "o" => Some(Purpose::Open),
            "1" => Some(Purpose::Once),
            "u" => Some(Purpose::Unsubscribe),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub purpose: Purpose,
    /// What the link is for: a portal path such as `/visuals/V-1001`.
    pub subject: String,
    pub contact_id: String,
    pub expires: DateTime<Utc>,
    pub nonce: String,
    /// When it was made, to the millisecond; none for a link made before cport wrote it.
    pub issued: Option<DateTime<Utc>>,
}

/// What a verified link lets its holder do, read from its claims: the one place that knows
/// how each purpose is written into a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkFor {
    /// Sign in as `contact_id` and open `path`.
    Open { contact_id: String, path: String },
    /// Decide once on one visual for a contact, through delegation `id`.
    Delegation { id: i64, path: String },
    /// Set the password of `contact_id` (a reset, or an invitation's first password).
    SetPassword { contact_id: String },
    /// Set the password of staff account `staff_id` (its first, or a new one).
    StaffPassword { staff_id: i64 },
    /// Stop `contact_id`'s emails of kind `what`.
    Unsubscribe { contact_id: String, what: Stoppable },
}

/// The path a password link opens, and the `contact` field's prefix of a delegation link.
const SET_PASSWORD_PATH: &str = "/password/reset";
const DELEGATION_PREFIX: &str = "delegation:";
/// The path a staff password link opens, and the `contact` field's prefix of one.
const STAFF_PASSWORD_PATH: &str = "/staff/password";
const STAFF_PREFIX: &str = "staff:";

impl LinkClaims {
    /// Made before `t`: a password link made before the password last changed is spent (a
    /// link of unknown age is not counted as older; it expires within days).
    pub fn made_before(&self, t: DateTime<Utc>) -> bool {
        self.issued.is_some_and(|i| i.timestamp_millis() < t.timestamp_millis())
    }

    /// Made before `t` or within its millisecond: a password link and a password set in the
    /// same millisecond cannot be told apart, and the link is then counted as spent (asking
    /// for another costs a click; a link that outlived the change would be a second way in).
    pub fn made_by(&self, t: DateTime<Utc>) -> bool {
        self.issued.is_some_and(|i| i.timestamp_millis() <= t.timestamp_millis())
    }

    /// The link's meaning; `None` for a one-time link of no known kind.
    pub fn meaning(&self) -> Option<LinkFor> {
        match self.purpose {
            Purpose::Unsubscribe => Some(LinkFor::Unsubscribe {
                contact_id: self.contact_id.clone(),
                what: Stoppable::parse(&self.subject)?,
            }),
            Purpose::Open => Some(LinkFor::Open { contact_id: self.contact_id.clone(), path: self.subject.clone() }),
            Purpose::Once => {
                if let Some(id) = self.contact_id.strip_prefix(DELEGATION_PREFIX) {
                    return Some(LinkFor::Delegation { id: id.parse().ok()?, path: self.subject.clone() });
                }
                if let Some(id) = self.contact_id.strip_prefix(STAFF_PREFIX) {
                    return (self.subject == STAFF_PASSWORD_PATH)
                        .then_some(LinkFor::StaffPassword { staff_id: id.parse().ok()? });
                }
                (self.subject == SET_PASSWORD_PATH)
                    .then(|| LinkFor::SetPassword { contact_id: self.contact_id.clone() })
            }
        }
    }
}

/// Why a token was refused. Callers show one message for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("malformed")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
}

/// No signed link lives longer (`digest.link_ttl_days` and `cport link --days` stop at it):
/// a single-use link's nonce may be forgotten this long after it was used.
pub const LONGEST_LINK_DAYS: i64 = 366;

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    /// The key before the last change, which still verifies what it signed (never signs).
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

const SEP: char = '\u{1f}';

impl Signer {
    pub fn new(secret: &str) -> Signer {
        Signer { key: secret.as_bytes().to_vec(), previous: None }
    }

    /// This signer, also accepting what `secret` (the key before the last change) signed:
    /// the links and reply addresses already in people's mail keep working. An empty one is
    /// none.
    pub fn with_previous(mut self, secret: &str) -> Signer {
        self.previous = (!secret.is_empty()).then(|| secret.as_bytes().to_vec());
        self
    }

    /// The keys a signature is checked against: the one in force first, then the previous.
    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.key.as_slice()).chain(self.previous.as_deref())
    }

    fn mac(&self, domain: &str, data: &[u8]) -> HmacSha256 {
        mac_with(&self.key, domain, data)
    }

    /// Makes a link token, valid `ttl` but never longer than [`LONGEST_LINK_DAYS`].
    pub fn sign(&self, purpose: Purpose, subject: &str, contact_id: &str, ttl: Duration, now: DateTime<Utc>) -> String {
        let ttl = ttl.min(Duration::days(LONGEST_LINK_DAYS));
        let mut nonce = [0u8; 9];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = format!(
            "{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}",
            purpose.code(),
            subject,
            contact_id,
            (now + ttl).timestamp(),
            B64.encode(nonce),
            // When it was made by the clock, not the caller's `now` (a digest pass signs with
            // the time it began, which may come before a contact it reaches was stored).
            Utc::now().timestamp_millis()
        );
        let tag = self.mac("link", payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", B64.encode(payload.as_bytes()), B64.encode(tag))
    }

    /// The full URL of a signed link: `{public_url}/l/{token}`.
    pub fn link_url(
        &self,
        public_url: &str,
        purpose: Purpose,
        subject: &str,
        contact_id: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> String {
        let token = self.sign(purpose, subject, contact_id, ttl, now);
        format!("{}/l/{token}", public_url.trim_end_matches('/'))
    }

    /// A picture's address that opens without a session until `expires` (for emails, whose
    /// pictures a mail client fetches on its own): `{public_url}{path}?exp=…&sig=…`, the
    /// signature over the path and the expiry.
    pub fn media_url(&self, public_url: &str, path: &str, expires: DateTime<Utc>) -> String {
        let exp = expires.timestamp();
        let tag = self.media_tag(path, exp);
        format!("{}{path}?exp={exp}&sig={tag}", public_url.trim_end_matches('/'))
    }

    fn media_tag(&self, path: &str, exp: i64) -> String {
        let data = format!("{path}{SEP}{exp}");
        B64.encode(self.mac("media", data.as_bytes()).finalize().into_bytes())
    }

    /// Checks a picture address's signature (over `path` and `exp`) and expiry.
    pub fn verify_media(&self, path: &str, exp: &str, sig: &str, now: DateTime<Utc>) -> Result<(), LinkError> {
        let exp: i64 = exp.parse().map_err(|_| LinkError::Malformed)?;
        let tag = B64.decode(sig).map_err(|_| LinkError::Malformed)?;
        let data = format!("{path}{SEP}{exp}");
        if !self.keys().any(|k| mac_with(k, "media", data.as_bytes()).verify_slice(&tag).is_ok()) {
            return Err(LinkError::BadSignature);
        }
        if exp <= now.timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    /// A link that signs `contact_id` in and opens `path`, valid `ttl`.
    pub fn open_url(
        &self,
        public_url: &str,
        path: &str,
        contact_id: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> String {
        self.link_url(public_url, Purpose::Open, path, contact_id, ttl, now)
    }

    /// The single-use link of delegation `delegation_id` to decide on `visual_id`.
    pub fn delegation_url(
        &self,
        public_url: &str,
        visual_id: &str,
        delegation_id: i64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> String {
        let subject = format!("/visuals/{}", crate::model::segment(visual_id));
        let who = format!("{DELEGATION_PREFIX}{delegation_id}");
        self.link_url(public_url, Purpose::Once, &subject, &who, ttl, now)
    }

    /// The address of the page where `contact_id` sets a password, with its one-time token.
    pub fn set_password_url(&self, public_url: &str, contact_id: &str, ttl: Duration, now: DateTime<Utc>) -> String {
        let token = self.sign(Purpose::Once, SET_PASSWORD_PATH, contact_id, ttl, now);
        format!("{}{SET_PASSWORD_PATH}?token={token}", public_url.trim_end_matches('/'))
    }

    /// The one-click unsubscribe address for `contact_id`'s emails of kind `what`.
    pub fn unsubscribe_url(
        &self,
        public_url: &str,
        contact_id: &str,
        what: Stoppable,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> String {
        let token = self.sign(Purpose::Unsubscribe, what.as_str(), contact_id, ttl, now);
        format!("{}/unsubscribe/{token}", public_url.trim_end_matches('/'))
    }

    /// The address of the page where staff account `staff_id` sets its password.
    pub fn staff_password_url(&self, public_url: &str, staff_id: i64, ttl: Duration, now: DateTime<Utc>) -> String {
        let who = format!("{STAFF_PREFIX}{staff_id}");
        let token = self.sign(Purpose::Once, STAFF_PASSWORD_PATH, &who, ttl, now);
        format!("{}{STAFF_PASSWORD_PATH}?token={token}", public_url.trim_end_matches('/'))
    }

    /// The claims of a token signed with this signer's key (or its previous one), whether or
    /// not it has expired; `None` for any other word (a forgery, a retired key's token).
    pub fn claims_any_time(&self, token: &str) -> Option<LinkClaims> {
        self.verify(token, DateTime::<Utc>::MIN_UTC).ok()
    }

    /// Checks a link token's signature and expiry (single use is the caller's check).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
        let (p, t) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let payload = B64.decode(p).map_err(|_| LinkError::Malformed)?;
        let tag = B64.decode(t).map_err(|_| LinkError::Malformed)?;
        // verify_slice compares in constant time.
        if !self.keys().any(|k| mac_with(k, "link", &payload).verify_slice(&tag).is_ok()) {
            return Err(LinkError::BadSignature);
        }
        let text = String::from_utf8(payload).map_err(|_| LinkError::Malformed)?;
        let parts: Vec<&str> = text.split(SEP).collect();
        // Links made before the time they were made was written in them have five parts.
        let (purpose, subject, contact, exp, nonce, issued) = match parts[..] {
            [purpose, subject, contact, exp, nonce] => (purpose, subject, contact, exp, nonce, None),
            [purpose, subject, contact, exp, nonce, issued] => {
                let ms: i64 = issued.parse().map_err(|_| LinkError::Malformed)?;
                (
                    purpose,
                    subject,
                    contact,
                    exp,
                    nonce,
                    Some(DateTime::from_timestamp_millis(ms).ok_or(LinkError::Malformed)?),
                )
            }
            _ => return Err(LinkError::Malformed),
        };
        let exp: i64 = exp.parse().map_err(|_| LinkError::Malformed)?;
        let expires = DateTime::from_timestamp(exp, 0).ok_or(LinkError::Malformed)?;
        if expires <= now {
            return Err(LinkError::Expired);
        }
        Ok(LinkClaims {
            purpose: Purpose::from_code(purpose).ok_or(LinkError::Malformed)?,
            subject: subject.to_string(),
            contact_id: contact.to_string(),
            expires,
            nonce: nonce.to_string(),
            issued,
        })
    }

    /// A short MAC of `data` for `domain` (hex), for values that travel in URLs. Made and
    /// checked with the key in force alone: what it signs lives minutes (a form's
    /// confirmation, a redirect's note), and is simply asked again after a change.
    pub fn tag(&self, domain: &str, data: &str) -> String {
        let t = self.mac(domain, data.as_bytes()).finalize().into_bytes();
        t[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A fresh reply token (lower-case base32): 16 characters of id, 8 of MAC.
    pub fn new_reply_token(&self) -> String {
        let mut id = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut id);
        self.address_token("reply", &base32(&id))
    }

    /// Checks a reply token's MAC (case-insensitively) and returns it normalised: as it was
    /// made, by whichever key made it.
    pub fn check_reply_token(&self, token: &str) -> Option<String> {
        self.checked_id("reply", token).map(|(id, key)| address_token_with(key, "reply", &id))
    }

    /// The token of a message's bounce address (`bounce+TOKEN@`, the envelope sender) for
    /// the message whose reply token is `reply_token`: the same id with a MAC of its own. The
    /// reply address is printed in every message and travels in quoted replies and forwards;
    /// were the bounce address that token under another prefix, anyone who saw one could
    /// forge delivery reports that suspend the contact's email.
    /// Made by the key that made the reply token, so that the report leads back to it.
    pub fn bounce_token(&self, reply_token: &str) -> String {
        let key = self.checked_id("reply", reply_token).map_or(self.key.as_slice(), |(_, key)| key);
        address_token_with(key, "bounce", reply_token.get(..16).unwrap_or(reply_token))
    }

    /// Checks a bounce token's MAC (case-insensitively) and returns the reply token of the
    /// message it came from, which the outbox keeps.
    pub fn reply_token_of_bounce(&self, token: &str) -> Option<String> {
        self.checked_id("bounce", token).map(|(id, key)| address_token_with(key, "reply", &id))
    }

    fn address_token(&self, purpose: &str, id: &str) -> String {
        address_token_with(&self.key, purpose, id)
    }

    /// The id of an address token for `purpose` whose MAC holds (compared in constant time),
    /// with the key that made it.
    fn checked_id(&self, purpose: &str, token: &str) -> Option<(String, &[u8])> {
        let t = token.to_ascii_lowercase();
        if t.len() != 24 || !t.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)) {
            return None;
        }
        self.keys().find_map(|key| {
            let want = address_token_with(key, purpose, &t[..16]);
            let diff = want.bytes().zip(t.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y));
            (diff == 0).then(|| (t[..16].to_string(), key))
        })
    }
}

fn mac_with(key: &[u8], domain: &str, data: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(domain.as_bytes());
    m.update(b"\0");
    m.update(data);
    m
}

/// An address token for `purpose`: the id and 8 characters of its MAC, lower-case base32
/// (24 in all: it fits an address's local part and survives a change of case).
fn address_token_with(key: &[u8], purpose: &str, id: &str) -> String {
    let tag = mac_with(key, purpose, id.as_bytes()).finalize().into_bytes();
    format!("{id}{}", &base32(&tag[..5]))
}

/// SHA-256 of a text as 64 lower-case hex digits: how tokens and codes are stored.
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets without leaking where they differ (both are hashed first, so the
/// time does not depend on their lengths either).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use sha2::Digest;
    let (x, y) = (sha2::Sha256::digest(a.as_bytes()), sha2::Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// RFC 4648 base32, lower case, no padding. Written here because it is six lines and a
/// crate would add nothing.
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link signed before tokens carried the time they were made (five parts) still
    /// verifies, of no known age; a made one knows its age.
    #[test]
    fn links_without_a_made_time_still_work() {
        let s = Signer::new("k");
        let now = Utc::now();
        let exp = (now + Duration::days(1)).timestamp();
        let payload = format!("o{SEP}/jobs{SEP}P-1{SEP}{exp}{SEP}bm9uY2U");
        let tag = s.mac("link", payload.as_bytes()).finalize().into_bytes();
        let token = format!("{}.{}", B64.encode(payload.as_bytes()), B64.encode(tag));
        let claims = s.verify(&token, now).expect("an old link verifies");
        assert_eq!((claims.subject.as_str(), claims.issued), ("/jobs", None));
        assert!(!claims.made_before(now + Duration::days(1)));
        let made = s.verify(&s.sign(Purpose::Open, "/jobs", "P-1", Duration::days(1), now), now).unwrap();
        let after = Utc::now() + Duration::milliseconds(1);
        assert!(made.made_before(after) && !made.made_before(now));
        let issued = made.issued.unwrap();
        assert!(made.made_by(issued) && !made.made_before(issued), "the same millisecond");
    }

    #[test]
    fn each_link_builder_reads_back_as_its_kind() {
        let s = Signer::new("k");
        let now = Utc::now();
        let token = |url: &str| url.rsplit(['/', '=']).next().unwrap().to_string();
        let open = s.open_url("https://p.example", "/jobs/J-1", "P-1", Duration::days(1), now);
        assert_eq!(
            s.verify(&token(&open), now).unwrap().meaning(),
            Some(LinkFor::Open { contact_id: "P-1".into(), path: "/jobs/J-1".into() })
        );
        let delegation = s.delegation_url("https://p.example", "V-1", 42, Duration::days(1), now);
        assert_eq!(
            s.verify(&token(&delegation), now).unwrap().meaning(),
            Some(LinkFor::Delegation { id: 42, path: "/visuals/V-1".into() })
        );
        let password = s.set_password_url("https://p.example/", "P-1", Duration::minutes(30), now);
        assert!(password.starts_with("https://p.example/password/reset?token="), "{password}");
        assert_eq!(
            s.verify(&token(&password), now).unwrap().meaning(),
            Some(LinkFor::SetPassword { contact_id: "P-1".into() })
        );
        let staff = s.staff_password_url("https://p.example", 7, Duration::hours(1), now);
        assert!(staff.starts_with("https://p.example/staff/password?token="), "{staff}");
        assert_eq!(s.verify(&token(&staff), now).unwrap().meaning(), Some(LinkFor::StaffPassword { staff_id: 7 }));
        let stop = s.unsubscribe_url("https://p.example", "P-1", Stoppable::Digest, Duration::days(90), now);
        assert!(stop.starts_with("https://p.example/unsubscribe/"), "{stop}");
        let token = stop.rsplit('/').next().unwrap();
        assert_eq!(
            s.verify(token, now).unwrap().meaning(),
            Some(LinkFor::Unsubscribe { contact_id: "P-1".into(), what: Stoppable::Digest })
        );
        // A one-time link of no known kind means nothing.
        let odd = s.sign(Purpose::Once, "/visuals/V-1", "P-1", Duration::days(1), now);
        assert_eq!(s.verify(&odd, now).unwrap().meaning(), None);
    }

    #[test]
    fn a_signed_picture_address_opens_only_its_path_until_it_expires() {
        let s = Signer::new("k");
        let now = Utc::now();
        let url = s.media_url("https://p.example/", "/media/visuals/V-1.svg", now + Duration::hours(1));
        let (path, query) = url.trim_start_matches("https://p.example").split_once('?').unwrap();
        assert_eq!(path, "/media/visuals/V-1.svg");
        let q: std::collections::HashMap<_, _> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
        assert_eq!(s.verify_media(path, q["exp"], q["sig"], now), Ok(()));
        assert_eq!(
            s.verify_media("/media/visuals/V-2.svg", q["exp"], q["sig"], now),
            Err(LinkError::BadSignature),
            "another path"
        );
        let later = (now + Duration::hours(2)).timestamp().to_string();
        assert_eq!(s.verify_media(path, &later, q["sig"], now), Err(LinkError::BadSignature), "a longer life");
        assert_eq!(s.verify_media(path, q["exp"], q["sig"], now + Duration::hours(1)), Err(LinkError::Expired));
        assert_eq!(Signer::new("other").verify_media(path, q["exp"], q["sig"], now), Err(LinkError::BadSignature));
    }

    #[test]
    fn a_signed_link_round_trips_and_tampering_is_caught() {
        let s = Signer::new("0123456789abcdef");
        let now = Utc::now();
        let t = s.sign(Purpose::Open, "/visuals/V-1001", "P-1", Duration::days(1), now);
        let c = s.verify(&t, now).unwrap();
        assert_eq!((c.subject.as_str(), c.contact_id.as_str(), c.purpose), ("/visuals/V-1001", "P-1", Purpose::Open));
        assert_eq!(s.verify(&t, now + Duration::days(2)), Err(LinkError::Expired));
        assert_eq!(Signer::new("another secret!!").verify(&t, now), Err(LinkError::BadSignature));
        let (p, tag) = t.split_once('.').unwrap();
        let forged = String::from_utf8(B64.decode(p).unwrap()).unwrap().replace("P-1", "P-2");
        assert_eq!(s.verify(&format!("{}.{tag}", B64.encode(forged)), now), Err(LinkError::BadSignature));
        assert_eq!(s.verify("garbage", now), Err(LinkError::Malformed));
    }

    /// After `link_secret` changes, with the old one given as `previous_link_secret`, what
    /// the old one signed still holds (a reply token and its bounce token as they were made,
    /// so the outbox finds the message), new things are signed with the new one alone, and a
    /// signer without the old one refuses what it signed.
    #[test]
    fn what_the_previous_secret_signed_still_holds_after_a_change() {
        let (old, now) = (Signer::new("the-old-secret-16"), Utc::now());
        let link = old.sign(Purpose::Open, "/visuals/V-1", "P-1", Duration::days(1), now);
        let picture = old.media_url("https://p.example", "/media/v.svg", now + Duration::hours(1));
        let reply = old.new_reply_token();
        let bounce = old.bounce_token(&reply);
        let new = Signer::new("the-new-secret-16").with_previous("the-old-secret-16");
        assert_eq!(new.verify(&link, now).map(|c| c.contact_id), Ok("P-1".to_string()));
        let q: std::collections::HashMap<&str, &str> =
            picture.split_once('?').unwrap().1.split('&').filter_map(|kv| kv.split_once('=')).collect();
        assert_eq!(new.verify_media("/media/v.svg", q["exp"], q["sig"], now), Ok(()));
        assert_eq!(new.check_reply_token(&reply.to_uppercase()), Some(reply.clone()), "as it was made");
        assert_eq!(new.bounce_token(&reply), bounce, "a message queued before the change and sent after it");
        assert_eq!(new.reply_token_of_bounce(&bounce), Some(reply.clone()));
        let fresh = new.sign(Purpose::Open, "/visuals/V-1", "P-1", Duration::days(1), now);
        assert_eq!(old.verify(&fresh, now), Err(LinkError::BadSignature), "signed with the new secret");
        let alone = Signer::new("the-new-secret-16");
        assert_eq!(alone.verify(&link, now), Err(LinkError::BadSignature));
        assert_eq!((alone.check_reply_token(&reply), alone.reply_token_of_bounce(&bounce)), (None, None));
        assert_eq!(Signer::new("the-new-secret-16").with_previous("").verify(&link, now), Err(LinkError::BadSignature));
    }

    #[test]
    fn reply_tokens_fit_an_address_and_survive_upper_casing() {
        let s = Signer::new("0123456789abcdef");
        let t = s.new_reply_token();
        assert_eq!(t.len(), 24);
        assert_eq!(s.check_reply_token(&t.to_uppercase()), Some(t.clone()));
        let mut bad = t.clone().into_bytes();
        bad[3] = if bad[3] == b'a' { b'b' } else { b'a' };
        assert_eq!(s.check_reply_token(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn a_bounce_token_cannot_be_made_from_the_reply_token() {
        let s = Signer::new("0123456789abcdef");
        let reply = s.new_reply_token();
        let bounce = s.bounce_token(&reply);
        assert_eq!(bounce.len(), 24);
        assert_ne!(bounce, reply, "the reply address does not give the bounce address");
        assert_eq!(s.reply_token_of_bounce(&bounce.to_uppercase()), Some(reply.clone()));
        // The reply token under the bounce prefix is no bounce token; nor is a changed one.
        assert_eq!(s.reply_token_of_bounce(&reply), None);
        let mut bad = bounce.clone().into_bytes();
        bad[20] = if bad[20] == b'a' { b'b' } else { b'a' };
        assert_eq!(s.reply_token_of_bounce(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(Signer::new("another-secret-16").reply_token_of_bounce(&bounce), None);
    }
}
