//! The recipient journal, `ID.jrn`: recipients' changes of state appended as they happen, so
//! that settling one batch of a message writes that batch, not the whole envelope. A message
//! to 20,000 recipients delivered 100 at a time wrote 200 MB when every batch rewrote the
//! envelope; appended, it writes about 200 KB.
//!
//! One line per batch: `d` or `f` (delivered, failed) switches the state for the indexes
//! that follow, then `crc32 XXXXXXXX` over everything before it:
//!
//! ```text
//! d 0 1 2 f 3 crc32 1c291ca3
//! ```
//!
//! A recipient changes state once (pending to delivered or failed, never back and never
//! again: the rule delivery keeps and this depends on), so replaying a line twice, or a stale
//! journal whose removal a crash undid onto a newer envelope, changes nothing, and the journal
//! of a message never outgrows a few bytes per recipient.
//! A line whose checksum fails is a torn append: it and anything after it are ignored, which
//! leaves those recipients pending (delivered again, never lost).

use crate::{Envelope, RcptState};

/// The journal line for these changes, newline included.
pub fn line(env: &Envelope, changed: &[u32]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(changed.len() * 6 + 16);
    let mut mode = None;
    for &i in changed {
        let Some(r) = env.recipients.get(i as usize) else {
            continue;
        };
        let word = match r.state {
            RcptState::Delivered => "d",
            RcptState::Failed => "f",
            RcptState::Pending => continue,
        };
        if mode != Some(word) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(word);
            mode = Some(word);
        }
        let _ = write!(text, " {i}");
    }
    let crc = crc32fast::hash(text.as_bytes());
    let _ = writeln!(text, " crc32 {crc:08x}");
    text.into_bytes()
}

/// Applies a journal to the envelope it belongs to; returns how many lines were applied.
pub fn replay(env: &mut Envelope, bytes: &[u8]) -> usize {
    let mut applied = 0;
    for raw in bytes.split(|&b| b == b'\n') {
        if raw.is_empty() {
            continue;
        }
        let Some(changes) = checked(raw) else { break };
        let mut state = None;
        for word in changes.split_ascii_whitespace() {
            match word {
                "d" => state = Some(RcptState::Delivered),
                "f" => state = Some(RcptState::Failed),
                n => {
                    let (Some(s), Ok(i)) = (state, n.parse::<usize>()) else {
                        continue;
                    };
                    if let Some(r) = env.recipients.get_mut(i) {
                        r.state = s;
                    }
                }
            }
        }
        applied += 1;
    }
    applied
}

/// The changes of a line whose checksum holds.
fn checked(raw: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(raw).ok()?;
    let (changes, crc) = text.rsplit_once(" crc32 ")?;
    let want = u32::from_str_radix(crc.trim_end(), 16).ok()?;
    (crc32fast::hash(changes.as_bytes()) == want).then_some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recipient;

    fn env(n: usize) -> Envelope {
        Envelope {
            id: "X".into(),
            recipients: (0..n)
                .map(|i| Recipient::pending(format!("r{i}@d")))
                .collect(),
            ..Envelope::default()
        }
    }

    #[test]
    fn lines_replay_onto_a_fresh_envelope() {
        let mut live = env(5);
        live.recipients[0].state = RcptState::Delivered;
        live.recipients[1].state = RcptState::Delivered;
        live.recipients[3].state = RcptState::Failed;
        let first = line(&live, &[0, 1, 3, 2]);
        assert!(first.starts_with(b"d 0 1 f 3 crc32 "), "{first:?}");
        live.recipients[4].state = RcptState::Delivered;
        let mut journal = first.clone();
        journal.extend(line(&live, &[4]));
        let mut fresh = env(5);
        assert_eq!(replay(&mut fresh, &journal), 2);
        assert_eq!(fresh.recipients, live.recipients);
        // Replaying twice changes nothing.
        journal.extend(first);
        let mut again = env(5);
        replay(&mut again, &journal);
        assert_eq!(again.recipients, live.recipients);
    }

    #[test]
    fn a_torn_or_garbled_line_ends_the_replay() {
        let mut live = env(3);
        live.recipients[0].state = RcptState::Delivered;
        live.recipients[1].state = RcptState::Delivered;
        let mut journal = line(&live, &[0]);
        let second = line(&live, &[1]);
        journal.extend_from_slice(&second[..second.len() - 3]);
        let mut fresh = env(3);
        assert_eq!(replay(&mut fresh, &journal), 1);
        assert_eq!(
            fresh.recipients[1].state,
            RcptState::Pending,
            "torn: stays pending"
        );
        for junk in [
            &b"d 99999999999 crc32 zz\n"[..],
            b"\xff\xfe\n",
            b"crc32\n",
            b"",
        ] {
            let mut e = env(3);
            replay(&mut e, junk);
            assert!(e.recipients.iter().all(|r| r.state == RcptState::Pending));
        }
    }
}
