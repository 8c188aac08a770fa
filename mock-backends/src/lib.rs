//! Fake inference servers (vLLM, llama.cpp, LM Studio, Ollama) whose timing
//! and faults are scripted by a profile, served over any byte stream:
//! `turmoil::net` inside the simulation, tokio TCP outside it.
//!
//! Module map:
//!
//! | module | concept |
//! |---|---|
//! | `spec` | the profile schema (`[[backends]]` of a scenario), defaults, validation |
//! | `server` | `MockBackend`: state of one host, HTTP/1.1 per connection, TCP accept loop |
//! | `routes` | dispatch by kind and path; health, model lists, chat completions |
//! | `stream` | the task writing one streamed completion on the profile's schedule |
//! | `complete` | the task answering one non-streamed completion |
//! | `job` | what a completion task owns; the wait for a generation slot |
//! | `generation` | completion length, finish reason, token timing |
//! | `sse` | the SSE events, shaped like vLLM's |
//! | `body` | the response body: whole, or a channel from a task |
//! | `capacity` | `max_num_seqs` slots with a bounded FIFO queue or 429/503 |
//! | `faults` | which scripted faults fire on a request |
//! | `profile` | the binary's profile: built-in default, profile file, or a scenario's backend |
//! | `record` | `Recorder` and `RequestRecord`: what the oracle reads; `RecordFile` for `--record-json` |
//! | `abort` | TCP reset for the `cut` fault |
//! | `request` | the chat-completions request fields used, prompt-token estimate |
//! | `rng` | the host's one seeded RNG and the draws from it |
//! | `words` | deterministic token text |
//! | `clock` | the injected `Clock` |
//!
//! Determinism: time is `tokio::time`, timestamps come from the injected
//! `Clock`, randomness from one `ChaCha8Rng` per `MockBackend`.

#![warn(missing_docs)]

mod abort;
mod body;
mod capacity;
mod clock;
mod complete;
mod faults;
mod generation;
mod job;
mod profile;
mod record;
mod request;
mod rng;
mod routes;
mod server;
mod spec;
mod sse;
mod stream;
mod words;

pub use body::BODY_CHANNEL_FRAMES_MAX;
pub use capacity::QUEUE_FULL_STATUS;
pub use clock::Clock;
pub use faults::HEALTH_FAIL_STATUS_DEFAULT;
pub use profile::{DEFAULT_MODEL_ID, DEFAULT_PROFILE_TOML, default_profile, profile_from_file_text};
pub use record::{Recorder, RequestEnd, RequestRecord};
pub use request::{PROMPT_BYTES_PER_TOKEN, PROMPT_TOKENS_BASE, PROMPT_TOKENS_PER_MESSAGE};
pub use routes::{CREATED_EPOCH_S, REQUEST_BODY_BYTES_MAX};
pub use server::{CONNECTIONS_MAX, MockBackend};
pub use spec::*;
