//! A comment posted with files (`multipart/form-data`, the comment form with its file field).
//!
//! A `multipart/form-data` body is a MIME multipart body (RFC 7578), so it is read as one: the
//! request's `Content-Type` is put in front of it and mail-parser reads the parts, the text
//! fields by their `Content-Disposition` names, and the files are staged with the store by
//! `postern_core::content::Uploads::stage`, exactly as a mail's attachments are.

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;
use mail_parser::{MimeHeaders, PartType};
use postern_core::content::Uploads;

use crate::session::{self, Me};
use crate::{WebError, WebState};

/// The largest comment request read at all: the text and its files together. Each file is
/// held to the instance's attachment limit besides.
pub(crate) const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Whether `request` is a form with files.
pub(crate) fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The text fields of a comment with files.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) csrf: String,
    pub(crate) body: String,
    pub(crate) internal: bool,
}

/// Reads a comment with files: the person (before the body is read), the body, the CSRF token
/// (403 unless it is the session's), the fields, and the files staged with the store.
pub(crate) async fn read(
    state: &WebState,
    request: Request,
) -> Result<(Me, Fields, Uploads), WebError> {
    let (parts, body) = request.into_parts();
    let me = session::require(state, &parts.headers).await?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Bytes = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| WebError::Refused("The files are too large.".to_owned()))?;
    let raw = as_mime(&content_type, &body);
    let fields = fields(&raw);
    me.check_csrf(&fields.csrf)?;
    let config = state.processor().config();
    let email = postern_mail::Email::parse(&raw);
    let too_large: Vec<String> = postern_mail::attachments(&email)
        .into_iter()
        .filter(|file| file.size > config.uploads.max_bytes)
        .map(|file| file.filename)
        .collect();
    if !too_large.is_empty() {
        return Err(WebError::Refused(format!(
            "Too large to attach (at most {} bytes each): {}",
            config.uploads.max_bytes,
            too_large.join(", ")
        )));
    }
    let files = Uploads::stage(&email, &config.uploads, state.store()).await?;
    Ok((me, fields, files))
}

/// `body` as a MIME message: its `Content-Type` (with the boundary) in front.
fn as_mime(content_type: &str, body: &[u8]) -> Vec<u8> {
    // A line break inside the header value would end the header block early.
    let content_type: String = content_type
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let mut raw = format!("MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n").into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// The text fields (`csrf`, `body`, `internal`) of the form: parts without a file name.
fn fields(raw: &[u8]) -> Fields {
    let mut fields = Fields::default();
    let Some(message) = mail_parser::MessageParser::default().parse(raw) else {
        return fields;
    };
    for part in message.parts.iter().skip(1) {
        if part.attachment_name().is_some_and(|name| !name.is_empty()) {
            continue;
        }
        let Some(name) = part
            .content_disposition()
            .filter(|d| d.ctype().eq_ignore_ascii_case("form-data"))
            .and_then(|d| d.attribute("name"))
        else {
            continue;
        };
        let value = match &part.body {
            PartType::Text(text) | PartType::Html(text) => text.to_string(),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                String::from_utf8_lossy(bytes).into_owned()
            }
            _ => continue,
        };
        match name {
            "csrf" => fields.csrf = value,
            // Browsers send a textarea's line breaks as CRLF; the stored text has LF.
            "body" => fields.body = value.replace("\r\n", "\n"),
            "internal" => fields.internal = true,
            _ => {}
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::{as_mime, fields};

    #[test]
    fn form_fields_are_read_from_the_parts() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntoken\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nline 1 café\r\nline 2\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"internal\"\r\n\r\n1\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nfile text\r\n--XyZ--\r\n";
        let raw = as_mime("multipart/form-data; boundary=XyZ", body.as_bytes());
        let read = fields(&raw);
        assert_eq!(read.csrf, "token");
        assert_eq!(read.body, "line 1 café\nline 2");
        assert!(read.internal);
        let email = postern_mail::Email::parse(&raw);
        let files = postern_mail::attachments(&email);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename, "a.txt");
        let injected = as_mime("multipart/form-data; boundary=XyZ\r\nX-Evil: 1", b"");
        assert!(!String::from_utf8_lossy(&injected).contains("\r\nX-Evil"));
    }
}
