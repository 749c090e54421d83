//! The disk spool against a real file system.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

mod common;

use bindery_spool::{
    DiskSpool, Envelope, IdGenerator, RcptState, Recipient, Spool, SpoolError, SyncMethod,
};

/// A message to one recipient, `b@r.example`.
fn envelope(id: &str) -> Envelope {
    let mut e = common::envelope(id, 1);
    e.recipients = Box::new([Recipient::pending("b@r.example")]);
    e
}

/// Stores synchronously.
fn store(spool: &dyn Spool, env: Envelope, body: &[u8]) -> Result<(), SpoolError> {
    let (tx, rx) = mpsc::channel();
    spool.store(env, body.to_vec(), Box::new(move |r| drop(tx.send(r))));
    rx.recv().expect("completion called")
}

fn files_in(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { files_in(&p) } else { 1 }
        })
        .sum()
}

#[test]
fn concurrent_stores_share_flushes_and_are_all_recovered() {
    for method in [SyncMethod::Fsync, SyncMethod::Syncfs] {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(DiskSpool::open(dir.path(), 0o640, method).unwrap());
        let ids = Arc::new(IdGenerator::new());
        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (spool, ids, tx) = (Arc::clone(&spool), Arc::clone(&ids), tx.clone());
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let id = ids.next(100);
                        let body = format!("Subject: {t}/{i}\r\n\r\nbody\r\n");
                        store(&*spool, envelope(&id), body.as_bytes()).unwrap();
                        tx.send((id, body)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for t in threads {
            t.join().unwrap();
        }
        let stored: Vec<(String, String)> = rx.iter().collect();
        assert_eq!(stored.len(), 400);
        let stats = spool.stats();
        let batches = stats.batches.load(Ordering::Relaxed);
        assert_eq!(stats.messages.load(Ordering::Relaxed), 400);
        assert!(
            batches < 400,
            "{method:?}: {batches} batches for 400 messages: no group commit"
        );
        drop(spool);

        let spool = DiskSpool::open(dir.path(), 0o640, method).unwrap();
        let rec = spool.recover().unwrap();
        assert_eq!(rec.messages.len(), 400);
        assert!(rec.quarantined.is_empty());
        for (id, body) in &stored {
            assert_eq!(spool.body(id).unwrap(), body.as_bytes());
        }
        let env = &rec.messages[0];
        assert_eq!(env.body_len, spool.body(&env.id).unwrap().len() as u64);
    }
}

#[test]
fn update_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    let id = IdGenerator::new().next(1);
    store(&spool, envelope(&id), b"x\r\n").unwrap();
    let mut env = spool.recover().unwrap().messages.remove(0);
    env.attempts = 3;
    env.recipients[0].state = RcptState::Delivered;
    spool.update(&env).unwrap();
    let again = spool.recover().unwrap().messages.remove(0);
    assert_eq!(again, env);
    spool.remove(&id).unwrap();
    assert!(spool.recover().unwrap().messages.is_empty());
    assert_eq!(files_in(&dir.path().join("queue")), 0);
}

/// Issue 16, finding 6: settling a message's recipients batch by batch appends a journal line
/// per batch instead of rewriting the envelope; recovery replays it, a later rewrite and the
/// removal clear it, and a journal whose message is gone is removed. 20,000 recipients
/// settled 100 at a time write a few hundred KB (rewriting the envelope each time: about
/// 200 MB).
#[test]
fn recipients_settle_through_the_journal_in_linear_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    let id = IdGenerator::new().next(1);
    let mut env = envelope(&id);
    env.recipients = (0..20_000)
        .map(|i| Recipient::pending(format!("recipient{i:05}@r.example")))
        .collect();
    env.seal(b"x\r\n");
    store(&spool, env.clone(), b"x\r\n").unwrap();
    let size = env.encode().len() as u64;
    for batch in 0..200u32 {
        let changed: Vec<u32> = (batch * 100..batch * 100 + 100).collect();
        for &i in &changed {
            env.recipients[i as usize].state = if i % 7 == 0 {
                RcptState::Failed
            } else {
                RcptState::Delivered
            };
        }
        spool.settle_recipients(&env, &changed).unwrap();
        if batch == 99 {
            let half = spool.recover().unwrap().messages.remove(0);
            assert_eq!(half.recipients[..10_000], env.recipients[..10_000]);
            assert_eq!(half.recipients[10_000].state, RcptState::Pending);
        }
    }
    let written = spool.stats().envelope_bytes.load(Ordering::Relaxed);
    assert!(
        written < size / 2,
        "{written} bytes written to settle a {size}-byte envelope"
    );
    let back = spool.recover().unwrap().messages.remove(0);
    assert_eq!(back.recipients, env.recipients);
    // A rewrite stands for the journal, and replaying a stale journal over it changes nothing.
    env.attempts = 4;
    spool.update(&env).unwrap();
    assert_eq!(spool.recover().unwrap().messages.remove(0), env);
    spool.settle_recipients(&env, &[0]).unwrap();
    spool.remove(&id).unwrap();
    assert_eq!(
        files_in(&dir.path().join("queue")),
        0,
        "the journal goes too"
    );
    // A journal left by a removal that a crash interrupted is cleared.
    let other = IdGenerator::new().next(2);
    store(&spool, envelope(&other), b"y\r\n").unwrap();
    let mut e = envelope(&other);
    e.recipients[0].state = RcptState::Delivered;
    spool.settle_recipients(&e, &[0]).unwrap();
    let folder = dir
        .path()
        .join("queue")
        .join(bindery_spool::id::folder_of(&other).unwrap());
    fs::remove_file(folder.join(format!("{other}.msg"))).unwrap();
    let rec = spool.recover().unwrap();
    assert!(rec.messages.is_empty() && rec.quarantined.is_empty());
    assert_eq!(rec.removed_unfinished, 1);
    assert_eq!(files_in(&dir.path().join("queue")), 0);
}

/// A body written as it arrives (issue 16, finding 7): stored, it is a message like any
/// other (recovered, read back, its CRC and length checked); dropped, or cut off by a crash,
/// it leaves nothing in the queue.
#[test]
fn an_incoming_body_is_stored_or_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    let ids = IdGenerator::new();
    let id = ids.next(1);
    let mut inc = spool.incoming(&id).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut want = b"Received: from test\r\n".to_vec();
    inc.write(&want).unwrap();
    for _ in 0..40 {
        inc.write(&chunk).unwrap();
        want.extend_from_slice(&chunk);
    }
    assert_eq!(inc.len(), want.len() as u64);
    // Read back before it is stored (what DKIM signing of a large message does).
    let mut read = Vec::new();
    inc.read_body(&mut |c| read.extend_from_slice(c)).unwrap();
    assert_eq!(read, want);
    let (tx, rx) = mpsc::channel();
    let mut env = envelope(&id);
    env.prefix = Some("DKIM-Signature: v=1; d=x\r\n".into());
    spool.store_incoming(env, inc, Box::new(move |r| drop(tx.send(r))));
    rx.recv().unwrap().unwrap();
    assert_eq!(spool.body(&id).unwrap(), want);
    // The message as sent: the prefix (kept in the envelope), then the body.
    let stored = spool.recover().unwrap().messages[0].clone();
    let sent = spool.message(&stored).unwrap();
    assert!(sent.starts_with(b"DKIM-Signature: v=1; d=x\r\nReceived: from test\r\n"));
    assert_eq!(
        sent.len(),
        want.len() + "DKIM-Signature: v=1; d=x\r\n".len()
    );
    let rec = spool.recover().unwrap();
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].body_len, want.len() as u64);
    assert_eq!(rec.messages[0].body_crc, crc32fast::hash(&want));
    // A later envelope rewrite works as for any message.
    let mut env = rec.messages[0].clone();
    env.attempts = 2;
    spool.update(&env).unwrap();
    assert_eq!(spool.recover().unwrap().messages[0].attempts, 2);
    assert_eq!(files_in(&dir.path().join("incoming")), 0);

    // Dropped (the message was refused, the client went away): nothing left.
    let other = ids.next(1);
    let mut inc = spool.incoming(&other).unwrap();
    inc.write(b"partial").unwrap();
    assert_eq!(files_in(&dir.path().join("incoming")), 1);
    drop(inc);
    assert_eq!(files_in(&dir.path().join("incoming")), 0);

    // Cut off by a crash: the next open clears it, and the queue holds only the stored one.
    let third = ids.next(1);
    let mut inc = spool.incoming(&third).unwrap();
    inc.write(b"partial").unwrap();
    std::mem::forget(inc);
    drop(spool);
    let spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    assert_eq!(files_in(&dir.path().join("incoming")), 0);
    let rec = spool.recover().unwrap();
    assert_eq!(rec.messages.len(), 1);
    assert!(rec.quarantined.is_empty());
}

#[test]
fn recovery_quarantines_what_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    let ids = IdGenerator::new();
    let next = |body: &[u8]| {
        let id = ids.next(1);
        let mut env = envelope(&id);
        env.seal(body);
        store(&spool, env.clone(), body).unwrap();
        env
    };
    let good = next(b"good\r\n");
    let torn_body = next(b"0123456789\r\n");
    let bad_crc = next(b"x\r\n");
    let bad_crc_update = next(b"x\r\n");
    spool.update(&bad_crc_update).unwrap();
    let removed = next(b"x\r\n");
    spool.update(&removed).unwrap();
    let rewrite = next(b"x\r\n");
    let torn_head = next(b"x\r\n");
    let path = |id: &str, ext: &str| {
        dir.path()
            .join("queue")
            .join(bindery_spool::id::folder_of(id).unwrap())
            .join(format!("{id}.{ext}"))
    };
    // A spool of the format before one file per message: body alone in .msg, plus .env.
    let old = envelope(&ids.next(1));
    let mut old_env = old.clone();
    old_env.seal(b"old\r\n");
    fs::write(path(&old.id, "msg"), b"old\r\n").unwrap();
    fs::write(path(&old.id, "env"), old_env.encode()).unwrap();
    let no_env = ids.next(1);
    drop(spool);

    // Every way a file can be wrong.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path(&torn_body.id, "msg"))
        .unwrap();
    f.set_len(f.metadata().unwrap().len() - 8).unwrap();
    let flip = |p: &Path, at: usize| {
        let mut bytes = fs::read(p).unwrap();
        bytes[at] ^= 1;
        fs::write(p, bytes).unwrap();
    };
    flip(&path(&bad_crc.id, "msg"), 30);
    flip(&path(&bad_crc_update.id, "env"), 10);
    fs::remove_file(path(&removed.id, "msg")).unwrap();
    fs::write(path(&rewrite.id, "env.tmp"), b"half").unwrap();
    fs::write(path(&torn_head.id, "msg"), b"bindery-spool 2 99\n{}").unwrap();
    fs::write(path(&no_env, "msg"), b"Received: x\r\n").unwrap();
    fs::write(dir.path().join("queue/00/junk"), b"?").unwrap();

    // Read-only scan first: reports, moves nothing.
    let ro = DiskSpool::scan_readonly(dir.path()).unwrap();
    assert_eq!(ro.messages.len(), 3);
    assert_eq!(ro.quarantined.len(), 7);
    assert!(path(&torn_body.id, "msg").exists());
    assert!(path(&removed.id, "env").exists());

    let spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    let rec = spool.recover().unwrap();
    let ids: Vec<&str> = rec.messages.iter().map(|m| &*m.id).collect();
    assert_eq!(
        ids,
        vec![good.id.as_ref(), rewrite.id.as_ref(), old.id.as_ref()]
    );
    assert_eq!(rec.messages[0], good);
    assert_eq!(
        rec.removed_unfinished, 2,
        "the .env.tmp and the removed message's .env"
    );
    assert!(!path(&removed.id, "env").exists());
    assert_eq!(spool.body(&good.id).unwrap(), b"good\r\n");
    assert_eq!(spool.body(&old.id).unwrap(), b"old\r\n");
    let reasons: Vec<String> = rec.quarantined.iter().map(|q| q.reason.clone()).collect();
    for want in [
        "torn body: 4 bytes on disk, 12 expected",
        "checksum mismatch",
        "body without envelope",
        "torn envelope: the file ends at 21, the envelope at 118",
        "not a spool file",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "no {want:?} in {reasons:?}"
        );
    }
    // Moved aside, not deleted: torn, two bad checksums (one with its .env), no envelope,
    // torn head, junk.
    assert_eq!(files_in(&dir.path().join("quarantine")), 7);
    // A second recovery finds a clean spool.
    let again = spool.recover().unwrap();
    assert_eq!(again.messages.len(), 3);
    assert!(again.quarantined.is_empty());
}

/// A real full disk: a small tmpfs. Needs root (mount); skipped otherwise.
#[test]
fn full_disk_fails_cleanly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIP: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let spool = DiskSpool::open(&mnt.join("spool"), 0o600, SyncMethod::Fsync).unwrap();
    let ids = IdGenerator::new();
    // Fill the disk.
    let filler = mnt.join("filler");
    let _ = fs::write(&filler, vec![0u8; 4 << 20]);
    let before = files_in(&mnt.join("spool/queue"));
    let big = vec![b'x'; 64 * 1024];
    for _ in 0..3 {
        let err = store(&spool, envelope(&ids.next(1)), &big).unwrap_err();
        assert!(err.to_string().contains("No space left"), "{err}");
    }
    assert_eq!(
        files_in(&mnt.join("spool/queue")),
        before,
        "half-written files left"
    );
    assert!(!spool.healthy());
    assert!(!spool.probe());
    fs::remove_file(&filler).unwrap();
    assert!(spool.probe());
    assert!(spool.healthy());
    store(&spool, envelope(&ids.next(1)), &big).unwrap();
    assert_eq!(spool.recover().unwrap().messages.len(), 1);
}

/// The queue folder carries the ext4 `T` flag (`chattr +T`) so its folders, and the message
/// files in them, spread over the disk's block groups. Skipped where the file system has no
/// such flags.
#[test]
fn the_queue_folder_spreads_its_folders() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let _spool = DiskSpool::open(dir.path(), 0o600, SyncMethod::Fsync).unwrap();
    let out = Command::new("lsattr")
        .arg("-d")
        .arg(dir.path().join("queue"))
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let flags = text.split_whitespace().next().unwrap_or("");
            assert!(flags.contains('T'), "lsattr says {text}");
        }
        _ => eprintln!("skipped: lsattr cannot read flags here"),
    }
}
