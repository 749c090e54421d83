//! SparkPost's error replies: an HTTP status and `{"errors": [{"message", "description",
//! "code"}]}` with the extended codes of SparkPost/support-docs
//! `content/docs/tech-resources/extended-error-codes.md`.

use serde_json::json;

/// One failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: &'static str,
    pub description: String,
    /// The extended code; `None` where SparkPost gives none (a bad API key).
    pub code: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: &'static str, description: String) -> Self {
        ApiError {
            status,
            message,
            description,
            code: Some(code),
        }
    }

    /// 401: no key, or one that is not known. SparkPost says only this.
    pub fn unauthorized() -> Self {
        ApiError {
            status: 401,
            message: "Unauthorized.",
            description: String::new(),
            code: None,
        }
    }

    /// 1100, 403: the key may not send transmissions.
    pub fn permission_denied(what: &str) -> Self {
        Self::new(403, "1100", "permission denied", what.to_string())
    }

    /// 1300, 400: the body is not JSON (SparkPost's "Problems parsing request as json").
    pub fn not_json(why: &str) -> Self {
        Self::new(
            400,
            "1300",
            "invalid data format/type",
            format!("Problems parsing request as json: {why}"),
        )
    }

    /// 1300, 422: a field of the wrong type or shape.
    pub fn bad_field(description: String) -> Self {
        Self::new(422, "1300", "invalid data format/type", description)
    }

    /// 1400, 422: a required field is missing.
    pub fn missing(description: String) -> Self {
        Self::new(422, "1400", "required field is missing", description)
    }

    /// 3000, 422: a template that does not parse.
    pub fn template_syntax(part: &str, why: &str) -> Self {
        Self::new(
            422,
            "3000",
            "substitution language syntax error in template content",
            format!("Error while compiling part {part}: {why}"),
        )
    }

    /// 3010, 422: the message cannot be built (a bad attachment, a bad header).
    pub fn mime(description: String) -> Self {
        Self::new(422, "3010", "template mime construction error", description)
    }

    /// 1700, 415: a body that is not JSON by its Content-Type.
    pub fn content_type() -> Self {
        Self::new(
            415,
            "1700",
            "Unsupported Content-Type header",
            "send Content-Type: application/json".into(),
        )
    }

    /// 413: a body over the listener's limit (SparkPost answers a plain 413 too).
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "1300",
            "invalid data format/type/length",
            format!("the request body is over {limit} bytes"),
        )
    }

    /// 1902, 400: the policy or the spool refused every recipient.
    pub fn generation_rejected(description: String) -> Self {
        Self::new(400, "1902", "Message generation rejected", description)
    }

    /// 1502, 503: the spool cannot take mail now; retry later.
    pub fn unavailable(description: String) -> Self {
        Self::new(503, "1502", "Server resources unavailable", description)
    }

    /// 1600, 404: no such resource.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            404,
            "1600",
            "resource not found",
            format!("no resource at {path}"),
        )
    }

    /// 1102, 405.
    pub fn method() -> Self {
        Self::new(405, "1102", "invalid HTTP method", String::new())
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let mut e = json!({ "message": self.message });
        if !self.description.is_empty() {
            e["description"] = json!(self.description);
        }
        if let Some(c) = self.code {
            e["code"] = json!(c);
        }
        json!({ "errors": [e] }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            ApiError::unauthorized().body(),
            r#"{"errors":[{"message":"Unauthorized."}]}"#
        );
        let e = ApiError::missing("recipients or list_id required".into());
        assert_eq!(e.status, 422);
        assert_eq!(
            e.body(),
            r#"{"errors":[{"code":"1400","description":"recipients or list_id required","message":"required field is missing"}]}"#
        );
    }
}
