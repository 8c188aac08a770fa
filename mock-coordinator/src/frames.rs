//! Text of every frame the coordinator sends, including deliberately broken
//! `job` frames. Built with `serde_json::Value`, whose maps are ordered, so
//! the same job always serializes to the same bytes.

use serde_json::{Map, Value, json};

use crate::script::{JobFormat, MalformedKind, RequestTemplate};

/// Filler the prompt is cut from; deterministic so bodies are reproducible.
const PROMPT_FILLER: &str = "The quick brown fox jumps over the lazy dog. ";

/// The parts of a `job` frame that vary per job.
#[derive(Clone, Debug)]
pub(crate) struct JobSpec<'a> {
    pub job_id: &'a str,
    pub model: &'a str,
    pub deadline_ms: Option<u64>,
    pub template: &'a RequestTemplate,
}

/// A user message of exactly `chars` characters.
fn prompt(chars: u32) -> String {
    PROMPT_FILLER.chars().cycle().take(chars as usize).collect()
}

/// The OpenAI chat-completions body; `user` carries the job id so backend
/// records can be joined to jobs (docs/ARCHITECTURE.md).
fn request_body(spec: &JobSpec<'_>) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(spec.model));
    body.insert(
        "messages".into(),
        json!([{ "role": "user", "content": prompt(spec.template.prompt_chars) }]),
    );
    body.insert("max_tokens".into(), json!(spec.template.max_tokens));
    body.insert("stream".into(), json!(true));
    for (k, v) in &spec.template.extra {
        body.insert(k.clone(), v.clone());
    }
    body.insert("user".into(), json!(spec.job_id));
    Value::Object(body)
}

fn job_value(spec: &JobSpec<'_>) -> Map<String, Value> {
    let mut frame = Map::new();
    frame.insert("type".into(), json!("job"));
    frame.insert("job_id".into(), json!(spec.job_id));
    frame.insert("model_id".into(), json!(spec.model));
    frame.insert("request".into(), request_body(spec));
    if let Some(format) = spec.template.format {
        let name = match format {
            JobFormat::Openai => "openai",
            JobFormat::Anthropic => "anthropic",
        };
        frame.insert("format".into(), json!(name));
    }
    if let Some(ms) = spec.deadline_ms {
        frame.insert("deadline_ms".into(), json!(ms));
    }
    frame
}

/// A well-formed `job` frame.
pub(crate) fn job(spec: &JobSpec<'_>) -> String {
    Value::Object(job_value(spec)).to_string()
}

/// A broken `job` frame and the `job_id` it carries (empty when none).
pub(crate) fn malformed(spec: &JobSpec<'_>, kind: MalformedKind) -> (String, String) {
    let mut frame = job_value(spec);
    let mut job_id = spec.job_id.to_owned();
    match kind {
        MalformedKind::NotJson => return ("{\"type\": \"job\", this is not json".into(), String::new()),
        MalformedKind::NotObject => return (json!(["job", spec.job_id]).to_string(), String::new()),
        MalformedKind::NoType => {
            frame.remove("type");
        }
        MalformedKind::MissingJobId => {
            frame.remove("job_id");
            job_id.clear();
        }
        MalformedKind::BadJobId => {
            job_id = format!("not-a-uuid-{}", spec.job_id.get(..8).unwrap_or(spec.job_id));
            frame.insert("job_id".into(), json!(job_id));
        }
        MalformedKind::MissingModel => {
            frame.remove("model_id");
        }
        MalformedKind::BadModel => {
            frame.insert("model_id".into(), json!(42));
        }
        MalformedKind::MissingRequest => {
            frame.remove("request");
        }
        MalformedKind::RequestNotObject => {
            frame.insert("request".into(), json!("hello"));
        }
        MalformedKind::BadDeadline => {
            frame.insert("deadline_ms".into(), json!(-5));
        }
        MalformedKind::DeadlineNotNumber => {
            frame.insert("deadline_ms".into(), json!("soon"));
        }
        MalformedKind::ZeroDeadline => {
            frame.insert("deadline_ms".into(), json!(0));
        }
        MalformedKind::BadFormat => {
            frame.insert("format".into(), json!("klingon"));
        }
    }
    (Value::Object(frame).to_string(), job_id)
}

/// `job_cancel`.
pub(crate) fn cancel(job_id: &str) -> String {
    json!({ "type": "job_cancel", "job_id": job_id }).to_string()
}

/// A frame of a type the protocol does not define.
pub(crate) fn unknown(type_name: &str, fields: &Map<String, Value>) -> String {
    let mut frame = fields.clone();
    frame.insert("type".into(), json!(type_name));
    Value::Object(frame).to_string()
}

/// `auth_challenge` with a base64 nonce.
pub(crate) fn auth_challenge(nonce_b64: &str) -> String {
    json!({ "type": "auth_challenge", "nonce": nonce_b64 }).to_string()
}

/// `auth_ok`.
pub(crate) fn auth_ok(provider_id: &str) -> String {
    json!({ "type": "auth_ok", "provider_id": provider_id }).to_string()
}

/// `auth_failed`.
pub(crate) fn auth_failed(reason: &str) -> String {
    json!({ "type": "auth_failed", "reason": reason }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(template: &RequestTemplate) -> JobSpec<'_> {
        JobSpec {
            job_id: "0b0e1c2a-1111-4222-8333-444455556666",
            model: "m1",
            deadline_ms: Some(1500),
            template,
        }
    }

    /// A job frame carries every protocol field and the id in `user`.
    #[test]
    fn job_frame_fields() {
        let t = RequestTemplate {
            prompt_chars: 10,
            ..RequestTemplate::default()
        };
        let v: Value = serde_json::from_str(&job(&spec(&t))).unwrap();
        assert_eq!(v["type"], "job");
        assert_eq!(v["model_id"], "m1");
        assert_eq!(v["deadline_ms"], 1500);
        assert_eq!(v["request"]["user"], v["job_id"]);
        assert_eq!(v["request"]["messages"][0]["content"], "The quick ");
        assert!(v.get("format").is_none());
    }

    /// `extra` keys land in the body but cannot replace `user`.
    #[test]
    fn extra_cannot_replace_user() {
        let mut t = RequestTemplate::default();
        t.extra.insert("user".into(), json!("x"));
        t.extra.insert("temperature".into(), json!(0.5));
        let v: Value = serde_json::from_str(&job(&spec(&t))).unwrap();
        assert_eq!(v["request"]["user"], v["job_id"]);
        assert_eq!(v["request"]["temperature"], 0.5);
    }

    /// Each malformed kind breaks exactly what it says.
    #[test]
    fn malformed_kinds() {
        let t = RequestTemplate::default();
        let s = spec(&t);
        assert!(serde_json::from_str::<Value>(&malformed(&s, MalformedKind::NotJson).0).is_err());
        let (text, id) = malformed(&s, MalformedKind::BadJobId);
        assert!(id.starts_with("not-a-uuid-"));
        assert!(text.contains(&id));
        let (text, id) = malformed(&s, MalformedKind::MissingModel);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v.get("model_id").is_none());
        assert_eq!(id, s.job_id);
        let v: Value = serde_json::from_str(&malformed(&s, MalformedKind::BadDeadline).0).unwrap();
        assert_eq!(v["deadline_ms"], -5);
    }
}
