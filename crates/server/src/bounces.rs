//! Momentum's `bounce_classifier_override` module: where the override rules come from
//! (files, or `:datasource:NAME:QUERY`), read into a [`Classifier`] at start, on `config
//! reload`, on the console's `bounce_classifier_override reload` and every `refresh`
//! seconds.
//!
//! A source the operator named that cannot be read is an error (at start and in `config
//! check`, on its line; later, a logged refusal that keeps the rules in force). Momentum's
//! default paths are used only where the file exists: a Momentum host keeps its files
//! there, a new one has none.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bindery_bounce::{Classes, Classifier, Rule, SmtpOverride, Sources, overrides};
use bindery_config::Snapshot;
use bindery_config::schema::ScopeKind;
use bindery_config::span::Span;
use bindery_config::tree::ROOT;
use bindery_config::value::Value;
use bindery_datasource::{Datasources, Datum, Params};

use crate::ServerError;
use crate::settings::located;

/// Where one override source is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Src {
    File { path: PathBuf, named: bool },
    Query { datasource: String, sql: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Smtp,
    Mdn,
}

/// The module as configured.
#[derive(Clone, Debug)]
pub struct BouncePlan {
    pub refresh: Duration,
    classes: Classes,
    /// In the order they apply: user SMTP, system SMTP, user MDN, system MDN; with the
    /// line that named each (none for a default path).
    sources: Vec<(Form, Src, Option<Span>)>,
}

/// Why the sources could not be read: where the option that named the source is (none
/// when the message names its own file and line, as a bad override line does).
#[derive(Clone, Debug)]
pub struct LoadError {
    pub span: Option<Span>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn source(value: &str, named: bool) -> Option<Src> {
    if let Some(rest) = value.strip_prefix(":datasource:") {
        let (ds, sql) = rest.split_once(':')?;
        return Some(Src::Query {
            datasource: ds.trim().to_string(),
            sql: sql.trim().to_string(),
        });
    }
    Some(Src::File {
        path: PathBuf::from(value),
        named,
    })
}

impl BouncePlan {
    /// The module of `snap`; `None` without its stanza.
    pub fn of(snap: &Snapshot) -> Result<Option<BouncePlan>, ServerError> {
        let tree = &snap.tree;
        let Some(id) = tree
            .children_of(ROOT, ScopeKind::BounceClassifierOverride)
            .next()
        else {
            return Ok(None);
        };
        let scope = tree.scope(id);
        let get = |o: &'static str| crate::settings::stanza_option(scope, o);
        let mut classes = Classes::default();
        if let (Some(Value::Dict(entries)), span) = get("Custom_Classes") {
            for (k, v) in entries {
                let code = k.trim().parse::<u16>().map_err(|_| {
                    located(
                        snap,
                        span,
                        format!("custom class `{k}` is not a number"),
                        Some("write custom_classes = [ 99 = \"profanity\" ]"),
                    )
                })?;
                classes
                    .register(code, &v)
                    .map_err(|e| located(snap, span, e, Some("custom classes are numbers under 100 that are not Momentum's own classes")))?;
            }
        }
        let system = !matches!(get("Enable_System_Updates").0, Some(Value::Bool(false)));
        let mut sources = Vec::new();
        for (form, user, sys) in [
            (
                Form::Smtp,
                "User_SMTP_Classification_Override",
                "System_SMTP_Classification_Override",
            ),
            (
                Form::Mdn,
                "User_MDN_Classification_Override",
                "System_MDN_Classification_Override",
            ),
        ] {
            let mut one = |o: &'static str,
                           span: Option<Span>,
                           v: Option<Value>|
             -> Result<(), ServerError> {
                let Some(Value::Str(s)) = v else {
                    return Ok(());
                };
                let src = source(&s, span.is_some()).ok_or_else(|| {
                    located(snap, span, format!("{o} `{s}` is not `:datasource:NAME:QUERY`"), Some("for example \":datasource:my_sqlite:SELECT domain, bounce_code, rule FROM overrides\""))
                })?;
                if let Src::Query { datasource, .. } = &src
                    && !tree
                        .children_of(ROOT, ScopeKind::Datasource)
                        .any(|d| tree.scope(d).name.as_deref() == Some(datasource.as_str()))
                {
                    return Err(located(
                        snap,
                        span,
                        format!(
                            "{o} names datasource `{datasource}`, which no `Datasource` stanza defines"
                        ),
                        None,
                    ));
                }
                sources.push((form, src, span));
                Ok(())
            };
            let (v, span) = get(user);
            one(user, span, v)?;
            if system {
                let (v, span) = get(sys);
                one(sys, span, v)?;
            }
        }
        let refresh = match get("Refresh").0 {
            Some(Value::Seconds(n)) => Duration::from_secs(n),
            _ => Duration::from_secs(300),
        };
        let plan = BouncePlan {
            refresh,
            classes,
            sources,
        };
        Ok(Some(plan))
    }

    /// Reads every source and builds the classifier; the error names the source and line.
    pub fn load(&self, ds: &Datasources) -> Result<Classifier, LoadError> {
        let mut smtp: Vec<SmtpOverride> = Vec::new();
        let mut mdn: Vec<Rule> = Vec::new();
        for (form, src, span) in &self.sources {
            let at = |message: String| LoadError {
                span: *span,
                message,
            };
            let own = |e: bindery_bounce::RuleError| LoadError {
                span: None,
                message: e.to_string(),
            };
            match src {
                Src::File { path, named } => {
                    let name = path.display().to_string();
                    let text = match std::fs::read_to_string(path) {
                        Ok(t) => t,
                        Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(at(format!(
                                "cannot read bounce override file {name}: {e}"
                            )));
                        }
                    };
                    match form {
                        Form::Smtp => smtp.extend(
                            overrides::parse_smtp(&name, &text, &self.classes).map_err(own)?,
                        ),
                        Form::Mdn => mdn.extend(
                            overrides::parse_mdn(&name, &text, &self.classes).map_err(own)?,
                        ),
                    }
                }
                Src::Query { datasource, sql } => {
                    let origin = format!("datasource {datasource}");
                    let cache = ds.get(datasource).map_err(|e| at(e.to_string()))?;
                    let rows = cache
                        .query(sql, &Params::None, true)
                        .map_err(|e| at(format!("{origin}: {e}")))?;
                    let rows: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| r.iter().map(|(_, d)| text(d)).collect())
                        .collect();
                    match form {
                        Form::Smtp => smtp.extend(
                            overrides::smtp_rows(&origin, &rows, &self.classes)
                                .map_err(|e| at(e.to_string()))?,
                        ),
                        Form::Mdn => mdn.extend(
                            overrides::mdn_rows(&origin, &rows, &self.classes)
                                .map_err(|e| at(e.to_string()))?,
                        ),
                    }
                }
            }
        }
        Classifier::new(Sources {
            classes: self.classes.clone(),
            smtp,
            mdn,
            base: bindery_bounce::rules::shipped(),
        })
        .map_err(|e| LoadError {
            span: None,
            message: format!("bounce override rules do not compile together: {e}"),
        })
    }

    /// [`BouncePlan::load`] with its error as a configuration error at its line.
    pub fn load_checked(
        &self,
        snap: &Snapshot,
        ds: &Datasources,
    ) -> Result<Classifier, ServerError> {
        self.load(ds).map_err(|e| match e.span {
            Some(span) => located(snap, Some(span), e.message, None),
            None => {
                ServerError::Config(format!("error: bounce_classifier_override: {}", e.message))
            }
        })
    }
}

fn text(d: &Datum) -> String {
    match d {
        Datum::Null => String::new(),
        Datum::Int(n) => n.to_string(),
        Datum::Real(f) => f.to_string(),
        Datum::Text(t) => t.clone(),
        Datum::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// The classifier `snap` configures (the shipped rules without the module), its
/// datasources built from the same snapshot: for `bindery bounce classify -c` and checks.
pub fn load(snap: &Snapshot) -> Result<Classifier, ServerError> {
    let Some(plan) = BouncePlan::of(snap)? else {
        return Ok(Classifier::shipped());
    };
    let ds = bindery_policy::datasources(&snap.tree).map_err(|d| {
        ServerError::Config(bindery_config::diag::render_all(&d, &snap.tree.sources))
    })?;
    plan.load_checked(snap, &ds)
}

/// The classifier a generation puts in force: its override module's, or the shipped rules.
pub fn of(g: &crate::Generation) -> Arc<Classifier> {
    match &g.bounces {
        Some((_, c)) => Arc::clone(c),
        None => bindery_bounce::shipped(),
    }
}

/// Reads the sources of the generation in force again and puts the rules in force
/// (`bounce_classifier_override reload`, and every `refresh` seconds). On an error the
/// rules in force stay, and the error says why.
pub fn reload(shared: &crate::Shared) -> Result<bindery_bounce::Counts, String> {
    let g = shared.current();
    let Some((plan, _)) = &g.bounces else {
        return Err(
            "bounce_classifier_override is not configured: the shipped rules are in force".into(),
        );
    };
    let c = plan.load(g.policy.datasources()).map_err(|e| e.message)?;
    let counts = c.counts();
    shared.bounces.store(c);
    Ok(counts)
}

/// Every `refresh` seconds of the generation in force, the override sources are read
/// again; a source that cannot be read is logged and the rules in force stay. Ends with
/// the daemon.
pub async fn refresh(shared: Weak<crate::Shared>) {
    loop {
        let every = match shared.upgrade() {
            Some(s) => s
                .current()
                .bounces
                .as_ref()
                .map_or(Duration::from_secs(300), |(p, _)| p.refresh),
            None => return,
        };
        tokio::time::sleep(every.max(Duration::from_secs(1))).await;
        let Some(s) = shared.upgrade() else { return };
        if s.current().bounces.is_none() {
            continue;
        }
        let s2 = Arc::clone(&s);
        match tokio::task::spawn_blocking(move || reload(&s2)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "bounce_classifier_override refresh failed; the rules in force stay")
            }
            Err(e) => tracing::warn!(error = %e, "bounce_classifier_override refresh task failed"),
        }
    }
}
