//! The daemon as the console and the metrics see it: [`bindery_control::Daemon`] for
//! [`Shared`]. Every method is a call the daemon itself makes elsewhere (the engine's
//! operations, [`Shared::install`]); nothing here changes state by another road.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bindery_config::{ConfigTree, Snapshot};
use bindery_control::daemon::{CalloutStats, Daemon, Install, RouteLine, SpoolHealth};
use bindery_delivery::engine::console::{MessageView, PartView, QueueView, Select};
use bindery_delivery::stats::Stats;
use bindery_policy::{Callout, Conn, Message};
use bindery_spool::Envelope;

use crate::{Shared, unix_now};

impl Shared {
    fn read_files(&self, with_local_changes: bool) -> Result<ConfigTree, String> {
        match &self.reload {
            Some(r) => r(with_local_changes),
            None => Err("this daemon was started without configuration files to reread".into()),
        }
    }
}

impl Daemon for Shared {
    fn now(&self) -> u64 {
        unix_now()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current().snapshot)
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn signing(&self) -> &bindery_control::signing::SigningStats {
        &self.signing
    }

    fn injections(&self) -> &bindery_control::injections::Injections {
        &self.injections
    }

    fn queues(&self) -> Vec<QueueView> {
        self.engine.queue_views()
    }

    fn parts(&self, sel: Select<'_>, limit: usize, offset: usize) -> Vec<PartView> {
        self.engine.parts(sel, limit, offset)
    }

    fn message(&self, id: &str) -> Option<MessageView> {
        self.engine.message(id)
    }

    fn inbound_sessions(&self) -> u64 {
        self.inbound.load(Ordering::Relaxed)
    }

    fn spool_health(&self) -> SpoolHealth {
        let s = self.disk.stats();
        SpoolHealth {
            healthy: self.spool.healthy(),
            stored: s.messages.load(Ordering::Relaxed),
            remove_failures: s.remove_failures.load(Ordering::Relaxed),
        }
    }

    fn callouts(&self) -> CalloutStats {
        let generation = self.current();
        let stats = generation.policy.stats();
        Callout::ALL
            .iter()
            .filter(|c| generation.policy.has(**c))
            .map(|&c| {
                (
                    c.name(),
                    stats.calls[c as usize].load(Ordering::Relaxed),
                    stats.errors[c as usize].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    fn routes(&self, domain: &str) -> Vec<RouteLine> {
        self.resolver
            .cached_routes(domain)
            .into_iter()
            .map(|(mx, ttl, ips)| RouteLine {
                preference: mx.preference,
                host: mx.host,
                ttl: u64::from(ttl),
                addresses: ips.iter().map(ToString::to_string).collect(),
            })
            .collect()
    }

    async fn fail(&self, sel: Select<'_>, reply: &str, quiet: bool) -> usize {
        self.engine.fail(sel, reply, quiet).await
    }

    fn flush(&self, sel: Select<'_>) -> usize {
        self.engine.flush(sel)
    }

    /// Binding assignment again: the current policy's `validate_set_binding` with the
    /// message's headers when the policy has one, else the default binding for mail whose
    /// binding the configuration no longer has. Reading the body blocks; the console runs
    /// on a multi-threaded runtime, so it blocks in place.
    async fn rebind(&self, sel: Select<'_>) -> usize {
        let generation = self.current();
        let snap = Arc::clone(&generation.snapshot);
        let spool = Arc::clone(&self.spool);
        let default = (
            generation.globals.binding_group.clone(),
            generation.globals.binding.clone(),
        );
        let choose = |env: &Envelope| -> Option<(String, String)> {
            let chosen = if generation.policy.has(Callout::SetBinding) {
                let body = tokio::task::block_in_place(|| spool.message(env)).ok()?;
                let peer = env
                    .peer
                    .parse()
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
                let mut conn = Conn::new(peer, "rebind", &[]);
                let mut msg = Message {
                    sender: env.sender.to_string(),
                    recipients: env
                        .recipients
                        .iter()
                        .map(|r| r.address.to_string())
                        .collect(),
                    body,
                    ..Message::default()
                };
                generation.policy.rebind(&mut conn, &mut msg)
            } else if snap.binding_id(&env.binding).is_some() {
                return None; // still configured, nothing decides otherwise
            } else {
                None
            };
            Some(match chosen {
                Some(a) => (a.group, a.binding),
                None => default.clone(),
            })
        };
        self.engine.rebind(sel, choose).await
    }

    fn install(&self, snapshot: Snapshot, why: Install) -> Result<Vec<String>, String> {
        Shared::install(self, snapshot, why)
    }

    fn reread(&self) -> Result<ConfigTree, String> {
        self.read_files(true)
    }

    /// The files without the local changes, with what the policy's `init` sets, as
    /// [`crate::Generation::build`] settles a configuration. The trial policy has no host:
    /// its `init` changes only the configuration it is given.
    fn files_alone(&self) -> Result<ConfigTree, String> {
        let tree = self.read_files(false)?;
        let snap = Arc::new(Snapshot::compile(tree, 0));
        let policy = bindery_policy::Policy::load(Arc::clone(&snap))
            .map_err(|e| bindery_policy::render(&e, &snap))?;
        Ok((*policy.snapshot().tree).clone())
    }

    fn write_file(&self, path: &std::path::Path, text: &str) -> Result<(), String> {
        tokio::task::block_in_place(|| crate::write_durably(path, text.as_bytes()))
            .map_err(|e| e.to_string())
    }

    fn with_changes<R>(&self, f: impl FnOnce(&mut Vec<String>) -> R) -> R {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut changes)
    }

    fn bounces(&self) -> Arc<bindery_bounce::Classifier> {
        Arc::clone(&self.bounces.load())
    }

    fn adaptive(&self) -> Option<Arc<bindery_adaptive::Live>> {
        self.current()
            .adaptive
            .is_some()
            .then(|| Arc::clone(&self.adaptive))
    }

    fn reload_bounces(&self) -> Result<bindery_bounce::Counts, String> {
        crate::bounces::reload(self)
    }

    fn reopen_logs(&self) -> Vec<std::path::PathBuf> {
        let mut paths = self.eclogs.reopen();
        if let Some(m) = &self.mainlog {
            m.reopen();
            paths.push(m.path().to_path_buf());
        }
        paths
    }
}
