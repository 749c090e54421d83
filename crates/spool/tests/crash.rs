//! Power loss, not only `kill -9` (issue 16): the disk spool runs on [`MemFs`], a file system
//! that keeps apart what was written and what a flush made durable. Each trial stores whole
//! and streamed messages (some still on their way through the committer), settles recipients
//! through the journal, rewrites envelopes and removes messages, then cuts the power at a
//! random moment: either everything not flushed is lost, or a random part of it was written
//! back first. A new spool on what is left must recover every message whose store was
//! acknowledged, with its body intact and every acknowledged recipient state; a removal may
//! come undone (a duplicate, never a loss), and an unacknowledged message is there whole or
//! not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

mod common;

use bindery_spool::fs::{Cut, Fs, MemFs};
use bindery_spool::{DiskSpool, Envelope, IdGenerator, RcptState, Spool, SyncMethod};
use common::envelope;

/// A small deterministic generator, so a failing trial can be run again by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the trial was told was durable.
#[derive(Default)]
struct Acked {
    /// Stored messages and their bodies.
    stored: BTreeMap<String, Vec<u8>>,
    /// Recipient states a settle or an update acknowledged, by message.
    states: BTreeMap<String, BTreeMap<usize, RcptState>>,
    /// Removals acknowledged (they may come undone).
    removed: BTreeSet<String>,
}

fn body(rng: &mut Rng, id: &str) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => 10,
        1 => 3000,
        2 => 70_000,
        _ => 300,
    };
    let mut b = format!("Received: test\r\nMessage-ID: <{id}>\r\n\r\n").into_bytes();
    b.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    b.extend_from_slice(b"\r\n");
    b
}

/// One trial: returns a description of what went wrong, if anything did.
fn trial(seed: u64, cut: Cut) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let fs = MemFs::new();
    let base = Path::new("/var/spool/bindery");
    {
        // The spool's folder exists, durably, before the daemon first runs.
        let v = fs.view();
        v.create_dir_all(base).map_err(|e| e.to_string())?;
        for d in ["/", "/var", "/var/spool", "/var/spool/bindery"] {
            v.sync_dir(Path::new(d)).map_err(|e| e.to_string())?;
        }
    }
    let method = if rng.below(4) == 0 {
        SyncMethod::Syncfs
    } else {
        SyncMethod::Fsync
    };
    let spool =
        DiskSpool::open_on(Arc::new(fs.view()), base, 0o600, method).map_err(|e| e.to_string())?;
    let ids = IdGenerator::new();
    let acked = Arc::new(Mutex::new(Acked::default()));
    // Messages stored and acknowledged, with their live envelope, for later operations.
    let mut live: Vec<(Envelope, Vec<u8>)> = Vec::new();
    let steps = 10 + rng.below(50);
    let mut waits = Vec::new();
    for _ in 0..steps {
        match rng.below(10) {
            // Store, whole or streamed; sometimes do not wait for the answer, so that the
            // power may go while the committer has it.
            0..=4 => {
                let id = ids.next(100);
                let rcpts = 1 + rng.below(4) as usize;
                let mut env = envelope(&id, rcpts);
                let b = body(&mut rng, &id);
                env.seal(&b);
                let (tx, rx) = std::sync::mpsc::channel();
                let a = Arc::clone(&acked);
                let (kept_id, kept_body) = (id.clone(), b.clone());
                let done: bindery_spool::Completion = Box::new(move |r| {
                    if r.is_ok() {
                        let mut a = a.lock().unwrap();
                        a.stored.insert(kept_id, kept_body);
                    }
                    let _ = tx.send(r.is_ok());
                });
                if rng.below(2) == 0 {
                    spool.store(env.clone(), b.clone(), done);
                } else {
                    let mut inc = match spool.incoming(&id) {
                        Ok(i) => i,
                        Err(_) => continue,
                    };
                    let mut ok = true;
                    for chunk in b.chunks(1 + rng.below(40_000) as usize) {
                        ok &= inc.write(chunk).is_ok();
                    }
                    if !ok {
                        continue;
                    }
                    spool.store_incoming(env.clone(), inc, done);
                }
                if rng.below(3) == 0 {
                    waits.push((rx, env, b));
                } else if rx.recv().unwrap_or(false) {
                    live.push((env, b));
                }
            }
            // Settle some recipients of a stored message through the journal.
            5..=6 if !live.is_empty() => {
                let k = rng.below(live.len() as u64) as usize;
                let (env, _) = &mut live[k];
                // A recipient leaves `pending` once and never changes again (delivery's rule,
                // which the journal's replay relies on).
                let pending: Vec<u32> = (0..env.recipients.len() as u32)
                    .filter(|&i| env.recipients[i as usize].state == RcptState::Pending)
                    .collect();
                let changed: Vec<u32> = pending.into_iter().filter(|_| rng.below(2) == 0).collect();
                for &i in &changed {
                    env.recipients[i as usize].state = if rng.below(4) == 0 {
                        RcptState::Failed
                    } else {
                        RcptState::Delivered
                    };
                }
                if spool.settle_recipients(env, &changed).is_ok() {
                    let mut a = acked.lock().unwrap();
                    let states = a.states.entry(env.id.to_string()).or_default();
                    for &i in &changed {
                        states.insert(i as usize, env.recipients[i as usize].state);
                    }
                }
            }
            // Rewrite a whole envelope (a console `message fail`, say).
            7 if !live.is_empty() => {
                let k = rng.below(live.len() as u64) as usize;
                let (env, _) = &mut live[k];
                env.attempts += 1;
                if let Some(r) = env
                    .recipients
                    .iter_mut()
                    .find(|r| r.state == RcptState::Pending)
                {
                    r.state = RcptState::Failed;
                }
                if spool.update(env).is_ok() {
                    let mut a = acked.lock().unwrap();
                    let states = a.states.entry(env.id.to_string()).or_default();
                    for (i, r) in env.recipients.iter().enumerate() {
                        if r.state != RcptState::Pending {
                            states.insert(i, r.state);
                        }
                    }
                }
            }
            // Remove one.
            8 if !live.is_empty() => {
                let k = rng.below(live.len() as u64) as usize;
                let (env, _) = live.swap_remove(k);
                if spool.remove(&env.id).is_ok() {
                    acked.lock().unwrap().removed.insert(env.id.to_string());
                }
            }
            _ => {
                // Collect some answers that were left waiting.
                for (rx, env, b) in waits.drain(..) {
                    if rx.recv().unwrap_or(false) {
                        live.push((env, b));
                    }
                }
            }
        }
    }
    // The power goes now, whatever the committer is doing.
    fs.crash(cut);
    drop(spool);
    drop(waits);

    let spool = DiskSpool::open_on(Arc::new(fs.view()), base, 0o600, method)
        .map_err(|e| format!("reopen: {e}"))?;
    let rec = spool.recover().map_err(|e| format!("recover: {e}"))?;
    let a = acked.lock().unwrap();
    let found: BTreeMap<&str, &Envelope> = rec.messages.iter().map(|e| (&*e.id, e)).collect();
    for (id, want) in &a.stored {
        let Some(env) = found.get(id.as_str()) else {
            if a.removed.contains(id) {
                continue;
            }
            return Err(format!(
                "acknowledged message {id} lost (quarantined: {:?})",
                rec.quarantined
            ));
        };
        let got = spool
            .body(id)
            .map_err(|e| format!("{id}: body unreadable: {e}"))?;
        if &got != want || crc32fast::hash(&got) != env.body_crc {
            return Err(format!("{id}: body differs after the crash"));
        }
        for (i, state) in a.states.get(id).into_iter().flatten() {
            if env.recipients.get(*i).map(|r| r.state) != Some(*state) {
                return Err(format!(
                    "{id}: recipient {i} was acknowledged {state:?}, recovered {:?}",
                    env.recipients.get(*i).map(|r| r.state)
                ));
            }
        }
    }
    for q in &rec.quarantined {
        let name = q.path.file_name().unwrap_or_default().to_string_lossy();
        if a.stored.keys().any(|id| name.contains(id.as_str())) {
            return Err(format!("acknowledged message quarantined: {q:?}"));
        }
    }
    // What was never acknowledged is whole or absent.
    for env in &rec.messages {
        if !a.stored.contains_key(&*env.id) {
            let b = spool
                .body(&env.id)
                .map_err(|e| format!("{}: unacknowledged and unreadable: {e}", env.id))?;
            if crc32fast::hash(&b) != env.body_crc {
                return Err(format!("{}: unacknowledged and torn", env.id));
            }
        }
    }
    Ok(())
}

#[test]
fn nothing_acknowledged_is_lost_when_the_power_goes() {
    let trials: u64 = std::env::var("BINDERY_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut failures = Vec::new();
    for seed in 1..=trials {
        for cut in [Cut::Strict, Cut::Writeback { seed }] {
            if let Err(e) = trial(seed, cut) {
                failures.push(format!("seed {seed} {cut:?}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} trials failed:\n{}",
        failures.len(),
        trials * 2,
        failures.join("\n")
    );
}
