//! A `POST /api/v1/transmissions` body, read field by field so that every mistake gets the
//! SparkPost error that names it: a missing field is 1400, a field of the wrong type 1300, a
//! feature bindery does not build (stored templates and recipient lists, scheduling, open and
//! click tracking, the sandbox) a 1300 that says so, never a silent success.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::template::Template;

/// One recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub email: String,
    pub name: Option<String>,
    /// `address.header_to`: what the To header shows (a CC or BCC copy's), when it is not
    /// this recipient.
    pub header_to: Option<String>,
    pub substitution_data: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
}

/// An attachment or inline image: `type`, `name`, base64 `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub content_type: String,
    pub name: String,
    pub data: Vec<u8>,
}

/// The message's content, its templates parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Inline(Box<Inline>),
    /// `email_rfc822`: a whole message, templated as text, used as it is otherwise.
    Rfc822(Template),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inline {
    pub from_email: Template,
    pub from_name: Option<Template>,
    pub subject: Template,
    pub text: Option<Template>,
    pub html: Option<Template>,
    pub reply_to: Option<Template>,
    pub headers: Vec<(String, Template)>,
    pub attachments: Vec<Part>,
    pub inline_images: Vec<Part>,
}

/// A whole request.
#[derive(Debug, Clone, PartialEq)]
pub struct Transmission {
    pub campaign_id: Option<String>,
    pub return_path: Option<String>,
    pub metadata: Map<String, Value>,
    pub substitution_data: Map<String, Value>,
    pub recipients: Vec<Recipient>,
    pub content: Content,
    /// `options.ip_pool`: the binding group the messages go out of.
    pub ip_pool: Option<String>,
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::bad_field(format!("'{what}' must be an object")))
}

fn string(v: &Value, what: &str) -> Result<String, ApiError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_field(format!("'{what}' must be a string")))
}

fn opt_string(m: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(v, what).map(Some),
    }
}

fn opt_object(
    m: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Map<String, Value>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(v) => obj(v, what).cloned(),
    }
}

/// Keys a map may hold; another is an error that names it (a misspelt field would otherwise
/// be a feature silently not used).
fn only(m: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::bad_field(format!(
            "unknown field '{what}{k}' (bindery takes {})",
            allowed.join(", ")
        ))),
    }
}

fn template(text: &str, html: bool, part: &str) -> Result<Template, ApiError> {
    Template::parse(text, html).map_err(|e| ApiError::template_syntax(part, &e.to_string()))
}

fn not_built(what: &str) -> ApiError {
    ApiError::bad_field(format!("{what} is not built in bindery"))
}

impl Transmission {
    /// Reads a request body that is already JSON.
    pub fn from_json(v: &Value) -> Result<Transmission, ApiError> {
        let m = obj(v, "transmission")?;
        only(
            m,
            &[
                "campaign_id",
                "description",
                "return_path",
                "metadata",
                "substitution_data",
                "recipients",
                "content",
                "options",
            ],
            "",
        )?;
        let options = opt_object(m, "options", "options")?;
        let ip_pool = read_options(&options)?;
        let recipients = match m.get("recipients") {
            None | Some(Value::Null) => {
                return Err(ApiError::missing("recipients or list_id required".into()));
            }
            Some(Value::Object(r)) if r.contains_key("list_id") => {
                return Err(not_built("recipients.list_id (stored recipient lists)"));
            }
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, r)| recipient(r, i))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(ApiError::bad_field("'recipients' must be an array".into())),
        };
        if recipients.is_empty() {
            return Err(ApiError::missing(
                "at least one recipient is required".into(),
            ));
        }
        let content = match m.get("content") {
            None | Some(Value::Null) => {
                return Err(ApiError::missing("content object is required".into()));
            }
            Some(c) => content(obj(c, "content")?)?,
        };
        Ok(Transmission {
            campaign_id: opt_string(m, "campaign_id", "campaign_id")?,
            return_path: opt_string(m, "return_path", "return_path")?,
            metadata: opt_object(m, "metadata", "metadata")?,
            substitution_data: opt_object(m, "substitution_data", "substitution_data")?,
            recipients,
            content,
            ip_pool,
        })
    }
}

/// `options`: `ip_pool`, and what bindery can honour of the rest. `transactional` and
/// `skip_suppression` change nothing here because bindery keeps no suppression list, so a
/// message goes out with them as without them (as SparkPost's would to a recipient who is on
/// no list).
fn read_options(o: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    only(
        o,
        &[
            "ip_pool",
            "transactional",
            "skip_suppression",
            "open_tracking",
            "click_tracking",
            "sandbox",
            "inline_css",
            "start_time",
        ],
        "options.",
    )?;
    for (flag, what) in [
        ("open_tracking", "options.open_tracking (open tracking)"),
        ("click_tracking", "options.click_tracking (click tracking)"),
        ("sandbox", "options.sandbox"),
        ("inline_css", "options.inline_css"),
    ] {
        match o.get(flag) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => return Err(not_built(what)),
            Some(_) => {
                return Err(ApiError::bad_field(format!(
                    "'options.{flag}' must be a boolean"
                )));
            }
        }
    }
    for flag in ["transactional", "skip_suppression"] {
        if let Some(v) = o.get(flag)
            && !v.is_boolean()
            && !v.is_null()
        {
            return Err(ApiError::bad_field(format!(
                "'options.{flag}' must be a boolean"
            )));
        }
    }
    if o.get("start_time").is_some_and(|v| !v.is_null()) {
        return Err(not_built("options.start_time (scheduled transmissions)"));
    }
    opt_string(o, "ip_pool", "options.ip_pool")
}

fn recipient(v: &Value, i: usize) -> Result<Recipient, ApiError> {
    let what = format!("recipients[{i}]");
    let m = obj(v, &what)?;
    only(
        m,
        &[
            "address",
            "substitution_data",
            "metadata",
            "tags",
            "return_path",
        ],
        &format!("{what}."),
    )?;
    let (email, name, header_to) = match m.get("address") {
        None | Some(Value::Null) => {
            return Err(ApiError::missing(format!("{what}.address is required")));
        }
        // SparkPost takes a bare string too.
        Some(Value::String(s)) => (s.clone(), None, None),
        Some(a) => {
            let a = obj(a, &format!("{what}.address"))?;
            only(
                a,
                &["email", "name", "header_to"],
                &format!("{what}.address."),
            )?;
            let email = opt_string(a, "email", &format!("{what}.address.email"))?
                .ok_or_else(|| ApiError::missing(format!("{what}.address.email is required")))?;
            (
                email,
                opt_string(a, "name", &format!("{what}.address.name"))?,
                opt_string(a, "header_to", &format!("{what}.address.header_to"))?,
            )
        }
    };
    if m.get("return_path").is_some_and(|v| !v.is_null()) {
        return Err(not_built(&format!(
            "{what}.return_path (a return path per recipient; set the transmission's)"
        )));
    }
    let tags = match m.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(t)) => t
            .iter()
            .map(|x| string(x, &format!("{what}.tags[]")))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_field(format!(
                "'{what}.tags' must be an array"
            )));
        }
    };
    Ok(Recipient {
        email,
        name,
        header_to,
        substitution_data: opt_object(
            m,
            "substitution_data",
            &format!("{what}.substitution_data"),
        )?,
        metadata: opt_object(m, "metadata", &format!("{what}.metadata"))?,
        tags,
    })
}

fn parts(c: &Map<String, Value>, key: &str) -> Result<Vec<Part>, ApiError> {
    use base64::Engine as _;
    let list = match c.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(l)) => l,
        Some(_) => {
            return Err(ApiError::bad_field(format!(
                "'content.{key}' must be an array"
            )));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("content.{key}[{i}]");
            let p = obj(p, &what)?;
            only(p, &["type", "name", "data"], &format!("{what}."))?;
            let get = |k: &str| {
                opt_string(p, k, &format!("{what}.{k}"))?
                    .ok_or_else(|| ApiError::missing(format!("{what}.{k} is required")))
            };
            let data = get("data")?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(data.split_whitespace().collect::<String>())
                .map_err(|e| ApiError::bad_field(format!("{what}.data is not base64: {e}")))?;
            Ok(Part {
                content_type: get("type")?,
                name: get("name")?,
                data,
            })
        })
        .collect()
}

fn content(c: &Map<String, Value>) -> Result<Content, ApiError> {
    if c.contains_key("template_id") {
        return Err(not_built("content.template_id (stored templates)"));
    }
    if let Some(raw) = c.get("email_rfc822") {
        only(c, &["email_rfc822"], "content.")?;
        let text = string(raw, "content.email_rfc822")?;
        return Ok(Content::Rfc822(template(&text, false, "email_rfc822")?));
    }
    only(
        c,
        &[
            "from",
            "subject",
            "text",
            "html",
            "reply_to",
            "headers",
            "attachments",
            "inline_images",
        ],
        "content.",
    )?;
    let (from_email, from_name) = match c.get("from") {
        None | Some(Value::Null) => {
            return Err(ApiError::missing("content.from is required".into()));
        }
        Some(Value::String(s)) => (s.clone(), None),
        Some(f) => {
            let f = obj(f, "content.from")?;
            only(f, &["email", "name"], "content.from.")?;
            (
                opt_string(f, "email", "content.from.email")?
                    .ok_or_else(|| ApiError::missing("content.from.email is required".into()))?,
                opt_string(f, "name", "content.from.name")?,
            )
        }
    };
    let subject = opt_string(c, "subject", "content.subject")?
        .ok_or_else(|| ApiError::missing("content.subject is required".into()))?;
    let text = opt_string(c, "text", "content.text")?;
    let html = opt_string(c, "html", "content.html")?;
    if text.is_none() && html.is_none() {
        return Err(ApiError::missing(
            "content.text or content.html is required".into(),
        ));
    }
    let headers = match c.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(h) => obj(h, "content.headers")?
            .iter()
            .map(|(k, v)| {
                if k.is_empty()
                    || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                    || ["from", "to", "subject", "reply-to", "date", "message-id"]
                        .contains(&k.to_ascii_lowercase().as_str())
                {
                    return Err(ApiError::bad_field(format!(
                        "content.headers: '{k}' is not a header bindery lets a transmission set"
                    )));
                }
                let v = string(v, &format!("content.headers.{k}"))?;
                Ok((k.clone(), template(&v, false, &format!("header {k}"))?))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Content::Inline(Box::new(Inline {
        from_email: template(&from_email, false, "from")?,
        from_name: from_name
            .map(|n| template(&n, false, "from name"))
            .transpose()?,
        subject: template(&subject, false, "subject")?,
        text: text.map(|t| template(&t, false, "text")).transpose()?,
        html: html.map(|t| template(&t, true, "html")).transpose()?,
        reply_to: opt_string(c, "reply_to", "content.reply_to")?
            .map(|t| template(&t, false, "reply_to"))
            .transpose()?,
        headers,
        attachments: parts(c, "attachments")?,
        inline_images: parts(c, "inline_images")?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> ApiError {
        Transmission::from_json(&v).expect_err("an error")
    }

    #[test]
    fn the_documented_minimum_reads() {
        // SparkPost/support-docs content/momentum/4/substitution-data.md's request.
        let t = Transmission::from_json(&json!({
            "return_path": "sender@x.test",
            "substitution_data": {"sender": "Momentum"},
            "recipients": [{"address": {"email": "r1@y.test"}, "substitution_data": {"firstname": "A"}},
                           {"address": {"email": "r2@y.test"}, "substitution_data": {"firstname": "B"}}],
            "content": {"from": "sender@x.test", "subject": "Sending Email Using Substitution Data",
                        "text": "Hi {{firstname}},\r\nWelcome to {{sender}}!"}
        }))
        .expect("valid");
        assert_eq!(t.recipients.len(), 2);
        assert_eq!(t.return_path.as_deref(), Some("sender@x.test"));
    }

    #[test]
    fn every_mistake_gets_its_error() {
        let content = json!({"from": "a@x.test", "subject": "s", "text": "t"});
        let rcpt = json!([{"address": {"email": "r@y.test"}}]);
        for (body, status, code, text) in [
            (json!([]), 422, "1300", "'transmission' must be an object"),
            (
                json!({"content": content}),
                422,
                "1400",
                "recipients or list_id required",
            ),
            (
                json!({"recipients": [], "content": content}),
                422,
                "1400",
                "at least one recipient",
            ),
            (
                json!({"recipients": "r@y.test", "content": content}),
                422,
                "1300",
                "'recipients' must be an array",
            ),
            (
                json!({"recipients": [{"address": {"name": "n"}}], "content": content}),
                422,
                "1400",
                "recipients[0].address.email is required",
            ),
            (
                json!({"recipients": [{"address": {"email": 5}}], "content": content}),
                422,
                "1300",
                "'recipients[0].address.email' must be a string",
            ),
            (
                json!({"recipients": rcpt}),
                422,
                "1400",
                "content object is required",
            ),
            (
                json!({"recipients": rcpt, "content": {"from": "a@x.test", "subject": "s"}}),
                422,
                "1400",
                "content.text or content.html",
            ),
            (
                json!({"recipients": rcpt, "content": {"template_id": "t1"}}),
                422,
                "1300",
                "stored templates",
            ),
            (
                json!({"recipients": {"list_id": "l"}, "content": content}),
                422,
                "1300",
                "stored recipient lists",
            ),
            (
                json!({"recipients": rcpt, "content": content, "options": {"open_tracking": true}}),
                422,
                "1300",
                "open tracking",
            ),
            (
                json!({"recipients": rcpt, "content": content, "options": {"start_time": "2030-01-01T00:00:00Z"}}),
                422,
                "1300",
                "scheduled",
            ),
            (
                json!({"recipients": rcpt, "content": content, "bogus": 1}),
                422,
                "1300",
                "unknown field 'bogus'",
            ),
            (
                json!({"recipients": rcpt, "content": {"from": "a@x.test", "subject": "s", "text": "{{if x}}"}}),
                422,
                "3000",
                "part text",
            ),
            (
                json!({"recipients": rcpt, "content": {"from": "a@x.test", "subject": "s", "text": "t", "headers": {"To": "x"}}}),
                422,
                "1300",
                "'To' is not a header",
            ),
            (
                json!({"recipients": rcpt, "content": {"from": "a@x.test", "subject": "s", "text": "t",
                    "attachments": [{"type": "text/plain", "name": "a.txt", "data": "!!"}]}}),
                422,
                "1300",
                "not base64",
            ),
        ] {
            let e = err(body.clone());
            assert_eq!((e.status, e.code), (status, Some(code)), "{body}");
            assert!(e.description.contains(text), "{body}: {}", e.description);
        }
    }
}
