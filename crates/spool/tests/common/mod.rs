//! What the spool's test files share.

use bindery_spool::{Envelope, Recipient};

/// A message from `a@s.example` to `rcpts` recipients `rN@d.example`, not yet sealed.
pub fn envelope(id: &str, rcpts: usize) -> Envelope {
    Envelope {
        id: id.into(),
        received: 100,
        next_attempt: 100,
        peer: "127.0.0.1".into(),
        helo: "c.example".into(),
        sender: "a@s.example".into(),
        recipients: (0..rcpts)
            .map(|i| Recipient::pending(format!("r{i}@d.example")))
            .collect(),
        binding_group: "default".into(),
        binding: "default".into(),
        ..Envelope::default()
    }
}
