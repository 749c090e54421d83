//! The Transmissions API of Momentum 4 and SparkPost (`POST /api/v1/transmissions`), without
//! I/O: the request read and checked ([`request`]), SparkPost's template language
//! ([`template`]), one recipient's message generated ([`generate`]), API keys ([`keys`]) and
//! SparkPost's error replies ([`error`]). The daemon's `transmissions` module serves it on
//! `HTTP_Listener` and puts each message through reception.
//!
//! What it takes and refuses is Momentum's documented subset (SparkPost/support-docs
//! `content/momentum/4/message-gen.md`, `substitution-data.md`) and SparkPost's public API
//! (`recipients[].address.{email,name,header_to}`, `substitution_data` and `metadata` at both
//! levels, `campaign_id`, `return_path`, `content.{from,subject,text,html,reply_to,headers,
//! attachments,inline_images}` or `content.email_rfc822`, `options.ip_pool`). Stored templates
//! and recipient lists, scheduling, tracking and the sandbox are refused by name.

pub mod error;
pub mod generate;
pub mod keys;
pub mod request;
pub mod template;

pub use error::ApiError;
pub use generate::Generated;
pub use request::Transmission;
