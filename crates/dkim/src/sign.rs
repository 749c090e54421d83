//! One DKIM signature (RFC 6376) over a message, as Momentum's opendkim module makes it.
//!
//! mail-auth canonicalizes and hashes; this file decides what goes in: line ends made CRLF
//! first (a bare CR or LF would be hashed one way and sent another: Momentum's MO-6817), the
//! headers of `headerlist` (every instance present, and each named once more where absent,
//! which asserts its absence), the `oversign` headers once more than they occur (so none can
//! be added after signing), `l=` and `x=` on request.

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use crate::key::Key;

/// `simple` or `relaxed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Canon {
    #[default]
    Simple,
    Relaxed,
}

impl Canon {
    pub fn parse(s: &str) -> Option<Canon> {
        match s.trim().to_ascii_lowercase().as_str() {
            "simple" => Some(Canon::Simple),
            "relaxed" => Some(Canon::Relaxed),
            _ => None,
        }
    }

    fn mail_auth(self) -> Canonicalization {
        match self {
            Canon::Simple => Canonicalization::Simple,
            Canon::Relaxed => Canonicalization::Relaxed,
        }
    }
}

/// What one signature says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `headerlist`: signed in this order; one absent from the message is asserted absent.
    pub headers: Vec<String>,
    /// `oversign_headerlist`: signed once more than they occur.
    pub oversign: Vec<String>,
    pub header_canon: Canon,
    pub body_canon: Canon,
    /// `body_length_limit`: `l=`.
    pub body_length: bool,
    /// `lifetime` in seconds (Momentum's option is in hours): `x=`; 0 for none.
    pub expiration: u64,
    /// `identity`: `i=`.
    pub identity: Option<String>,
    /// `copy_headers`: `z=`, a copy of the signed header fields.
    pub copy_headers: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no header to sign: none of the headerlist is in the message")]
    NoHeaders,
    #[error("signing failed: {0}")]
    Crypto(String),
    #[error("cannot read the spooled message: {0}")]
    Read(String),
}

/// `message` with every line ending CRLF; bindery-smtp's, which the policy and the
/// Transmissions API use too.
pub use bindery_smtp::line_ends::crlf;

/// How many times header `name` occurs in the header section of `message`.
fn occurrences(message: &[u8], name: &str) -> usize {
    let mut n = 0;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
        {
            n += 1;
        }
    }
    n
}

/// Hands every chunk of a message, in order, to the function it is given; its error says
/// why the message could not be read.
pub type Feed<'a> = &'a mut dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<(), String>;

/// The signer for `o`, given the message's header section (or the whole message): the
/// header list in order, each `oversign` header once more than `head` holds it.
fn signer<'k>(key: &'k Key, o: &Options, head: &[u8]) -> DkimSigner<&'k Key, Done> {
    let mut h: Vec<String> = Vec::with_capacity(o.headers.len() + o.oversign.len());
    for name in &o.headers {
        if !h.iter().any(|x| x.eq_ignore_ascii_case(name)) {
            h.push(name.clone());
        }
    }
    // mail-auth signs every instance of a listed name and lists a name that matched
    // nothing as absent: one more entry per name oversigns it.
    for name in &o.oversign {
        if !h.iter().any(|x| x.eq_ignore_ascii_case(name)) {
            h.push(name.clone());
        }
        if occurrences(head, name) > 0 {
            h.push(name.clone());
        }
    }
    let mut signer = DkimSigner::from_key(key)
        .domain(o.domain.clone())
        .selector(o.selector.clone())
        .headers(h)
        .header_canonicalization(o.header_canon.mail_auth())
        .body_canonicalization(o.body_canon.mail_auth())
        .body_length(o.body_length);
    if o.expiration > 0 {
        signer = signer.expiration(o.expiration);
    }
    if let Some(i) = &o.identity {
        signer = signer.agent_user_identifier(i.clone());
    }
    signer
}

fn sign_error(e: mail_auth::Error) -> SignError {
    match e {
        mail_auth::Error::NoHeadersFound => SignError::NoHeaders,
        other => SignError::Crypto(other.to_string()),
    }
}

/// The `DKIM-Signature:` field for `message` (which must already end its lines with CRLF:
/// see [`crlf`]), folded, with its CRLF: prepend it to the message.
pub fn sign(message: &[u8], key: &Key, o: &Options) -> Result<String, SignError> {
    let signer = signer(key, o, message);
    let signature = signer.sign(message).map_err(sign_error)?;
    if o.copy_headers {
        return crate::copies::with_copies(&signer, &signature, key, message, o.header_canon);
    }
    Ok(field(&signature, o))
}

/// Signs a message too large to hold: `head` is its header section (for oversigning), and
/// `feed` hands every chunk of the whole message, in order, to the function it is given
/// (one pass, however many signatures). Returns one field per entry of `keys`, or the first
/// error; `feed`'s own error is returned as [`SignError::Read`].
pub fn sign_streamed(
    keys: &[(&Key, &Options)],
    head: &[u8],
    feed: Feed<'_>,
) -> Result<Vec<String>, SignError> {
    let signers: Vec<DkimSigner<&Key, Done>> =
        keys.iter().map(|(k, o)| signer(k, o, head)).collect();
    let mut streams: Vec<_> = signers.iter().map(|s| s.sign_streaming()).collect();
    feed(&mut |chunk| {
        for s in &mut streams {
            s.write(chunk);
        }
    })
    .map_err(SignError::Read)?;
    streams
        .into_iter()
        .zip(keys)
        .zip(&signers)
        .map(|((s, (k, o)), signer)| {
            let sig = s.finish().map_err(sign_error)?;
            if o.copy_headers {
                // `head` ends at the blank line: what the header iterator needs to stop.
                let mut h = head.to_vec();
                if !h.ends_with(b"\r\n\r\n") {
                    h.extend_from_slice(b"\r\n");
                }
                return crate::copies::with_copies(signer, &sig, k, &h, o.header_canon);
            }
            Ok(field(&sig, o))
        })
        .collect()
}

/// The field as written. mail-auth hashes the signature header in one form and writes it in
/// another: with `relaxed`, its folds fall elsewhere in the written header than the spaces
/// it hashed, and a long `h=` then fails every verifier. So under `relaxed` the header is
/// written from the very form that was hashed, each of its spaces a fold (which `relaxed`
/// turns back into that space); under `simple` the written header is the hashed one.
fn field(signature: &mail_auth::dkim::Signature, o: &Options) -> String {
    let mut header = match o.header_canon {
        Canon::Simple => signature.to_header(),
        Canon::Relaxed => {
            let hashed = signature.to_string();
            let value = hashed
                .strip_prefix("dkim-signature:")
                .unwrap_or(&hashed)
                .trim();
            // The value was hashed with `b=` empty, so with no space after `b=`'s value: a
            // fold mail-auth puts between the signature and its closing `;` would be hashed
            // by a verifier as a space.
            let value = match value.strip_suffix(';') {
                Some(v) => format!("{};", v.trim_end()),
                None => value.to_string(),
            };
            format!("DKIM-Signature: {}", value.replace(' ', "\r\n\t"))
        }
    };
    if !header.ends_with("\r\n") {
        header.push_str("\r\n");
    }
    header
}

impl mail_auth::common::crypto::SigningKey for &Key {
    type Hasher = mail_auth::common::crypto::Sha256;

    fn sign(&self, input: impl mail_auth::common::headers::Writable) -> mail_auth::Result<Vec<u8>> {
        (*self).sign(input)
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        (*self).algorithm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_count_fields_not_continuations() {
        let m = b"From: a\r\nTo: b\r\n c\r\nfrom : d\r\n\r\nFrom: body\r\n";
        assert_eq!(occurrences(m, "From"), 2);
        assert_eq!(occurrences(m, "to"), 1);
        assert_eq!(occurrences(m, "Subject"), 0);
    }
}
