//! Listener options: which scopes an inbound connection's options come from.
//!
//! Momentum falls back from `Listen::Peer` to `Listen`, then to the listener, then to global
//! (momentum.md §2.4), and picks the most specific `Peer` CIDR that holds the client. Momentum
//! does not document where a `Peer` directly inside the listener ranks; bindery puts it between
//! the Listen and the listener: `Listen::Peer > Listen > Listener::Peer > Listener > global`.

use std::net::IpAddr;

use crate::schema::{OptionId, ScopeKind};
use crate::snapshot::default_value;
use crate::tree::{ConfigTree, ROOT, ScopeId};
use crate::value::{self, ListenAddr, Value};

/// One `Listen` scope of a listener.
#[derive(Clone, Debug)]
pub struct ListenSite {
    pub listener: ScopeId,
    pub listen: ScopeId,
    /// `None` when the Listen's name is not an address (the config check reports it).
    pub addr: Option<ListenAddr>,
}

/// Every `Listen` inside every listener of `kind`, in file order.
pub fn listens(tree: &ConfigTree, kind: ScopeKind) -> Vec<ListenSite> {
    let mut out = Vec::new();
    for &l in &tree.scope(ROOT).children {
        if tree.scope(l).kind != kind {
            continue;
        }
        for &c in &tree.scope(l).children {
            let s = tree.scope(c);
            if s.kind == ScopeKind::Listen {
                out.push(ListenSite {
                    listener: l,
                    listen: c,
                    addr: s.name.as_deref().and_then(value::parse_listen),
                });
            }
        }
    }
    out
}

/// The `Peer` child of `parent` with the longest prefix that contains `ip`.
fn best_peer(tree: &ConfigTree, parent: ScopeId, ip: IpAddr) -> Option<ScopeId> {
    tree.scope(parent)
        .children
        .iter()
        .copied()
        .filter(|&c| tree.scope(c).kind == ScopeKind::Peer)
        .filter_map(|c| {
            let net = value::parse_cidr(tree.scope(c).name.as_deref()?)?;
            net.contains(&ip).then_some((net.prefix_len(), c))
        })
        .max_by_key(|&(len, _)| len)
        .map(|(_, c)| c)
}

/// The scopes to search, most specific first, for a client at `peer` on `site` (`None`
/// for the listener's own options, before any client is known).
pub fn chain(tree: &ConfigTree, site: &ListenSite, peer: Option<IpAddr>) -> Vec<ScopeId> {
    let mut c = Vec::with_capacity(5);
    if let Some(p) = peer.and_then(|ip| best_peer(tree, site.listen, ip)) {
        c.push(p);
    }
    c.push(site.listen);
    if let Some(p) = peer.and_then(|ip| best_peer(tree, site.listener, ip)) {
        c.push(p);
    }
    c.push(site.listener);
    c.push(ROOT);
    c
}

/// Where the setting [`resolve`] takes its value from was written, if it was.
pub fn setting<'t>(
    tree: &'t ConfigTree,
    chain: &[ScopeId],
    opt: OptionId,
) -> Option<&'t crate::tree::Setting> {
    setting_at(tree, chain, opt).map(|(_, st)| st)
}

/// The first setting of `opt` along `chain` with the scope that holds it,
/// for callers that key something by where the setting was written (the
/// session budgets count per holding scope).
pub fn setting_at<'t>(
    tree: &'t ConfigTree,
    chain: &[ScopeId],
    opt: OptionId,
) -> Option<(ScopeId, &'t crate::tree::Setting)> {
    chain
        .iter()
        .find_map(|&s| tree.scope(s).setting(opt).map(|st| (s, st)))
}

/// The first setting of `opt` along `chain`, else the option's default.
pub fn resolve(tree: &ConfigTree, chain: &[ScopeId], opt: OptionId) -> Option<Value> {
    setting(tree, chain, opt)
        .map(|st| st.value.clone())
        .or_else(|| default_value(opt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::option_by_name;
    use crate::{LoadOptions, MemSource};
    use std::path::Path;

    #[test]
    fn peer_listen_listener_global() {
        let text = r#"
            Max_Receptions_Per_Connection = 9
            ESMTP_Listener {
              Max_Message_Size = 1000
              Peer "10.0.0.0/8" { Max_Message_Size = 8 }
              Listen "127.0.0.1:25" {
                Max_Recipients_Per_Message = 5
                Peer "127.0.0.0/8" { Max_Message_Size = 100 }
                Peer "127.0.0.2/32" { Max_Message_Size = 200 }
              }
            }
        "#;
        let src = MemSource::new().with("/t.conf", text);
        let (tree, diags) =
            crate::load(&src, Path::new("/t.conf"), &LoadOptions::default()).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        let sites = listens(&tree, ScopeKind::EsmtpListener);
        assert_eq!(sites.len(), 1);
        let size = option_by_name("max_message_size").unwrap();
        let rcpts = option_by_name("max_recipients_per_message").unwrap();
        let recv = option_by_name("max_receptions_per_connection").unwrap();
        let get = |ip: &str, o| {
            resolve(
                &tree,
                &chain(&tree, &sites[0], Some(ip.parse().unwrap())),
                o,
            )
        };
        assert_eq!(get("127.0.0.2", size), Some(Value::Bytes(200)));
        assert_eq!(get("127.0.0.3", size), Some(Value::Bytes(100)));
        assert_eq!(get("10.1.1.1", size), Some(Value::Bytes(8)));
        assert_eq!(get("192.0.2.1", size), Some(Value::Bytes(1000)));
        assert_eq!(get("192.0.2.1", rcpts), Some(Value::Int(5)));
        assert_eq!(get("192.0.2.1", recv), Some(Value::Int(9)));
    }
}
