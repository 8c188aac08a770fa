//! What the coordinator saw of each job id: its submissions (one per `job`
//! frame written) and the frames attributed to each.

use super::blob::Blob;
use super::event::{JobKind, Terminal};
use super::name::SubName;
use super::shared::{JobId, Name};

/// The `error_code`s the agent answers at admission, before any backend is
/// contacted: a submission answered with one of them (and nothing else)
/// never ran.
pub const ADMISSION_CODES: &[&str] = &["duplicate_job", "out_of_capacity", "model_not_loaded", "invalid_job"];

/// One *submission*: a `job` frame the coordinator wrote, with every frame
/// the coordinator attributed to it. A job id sent once has one; a re-sent
/// id has one per `job` frame (mock-coordinator/README.md, "Attribution":
/// each chunk and terminal frame of an id belongs to exactly one of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSend {
    /// The coordinator's record index of the submission (the internal key).
    pub sub: u64,
    /// Its user-facing name: the scenario's `job = N` number (see
    /// [`super::name`]).
    pub name: SubName,
    /// When the frame was completely written.
    pub at_us: u64,
    /// Index of the event in the trace (orders events of one instant).
    pub seq: usize,
    pub conn: u64,
    pub model: Name,
    pub deadline_ms: u64,
    pub kind: JobKind,
    /// Re-sends: whether the id was free for the agent when this was written.
    pub id_was_free: Option<bool>,
    /// Chunks attributed to this submission, in order.
    pub chunks: Vec<Seen<u64>>,
    /// Terminal frames attributed to this submission, in order (more than
    /// one is a violation).
    pub terminals: Vec<Seen<Terminal>>,
    /// The first `job_cancel` that counted for this submission.
    pub cancel_us: Option<u64>,
    /// When a later submission of the id superseded this cancelled one.
    pub superseded_us: Option<u64>,
    /// When its connection ended while it was in flight.
    pub session_lost_us: Option<u64>,
    /// The bytes the coordinator reassembled for it (empty without chunks).
    pub bytes: Blob,
}

impl JobSend {
    /// Its first terminal frame, if any.
    pub fn first_terminal(&self) -> Option<&Seen<Terminal>> {
        self.terminals.first()
    }

    /// Time of its first terminal frame, if any.
    pub fn first_terminal_us(&self) -> Option<u64> {
        self.first_terminal().map(|t| t.at_us)
    }

    /// Whether a cancel counted for it before any terminal frame arrived.
    pub fn cancelled_before_terminal(&self) -> bool {
        before_terminal(self.cancel_us, self.first_terminal_us())
    }

    /// Whether its connection ended before any terminal frame arrived.
    pub fn lost_before_terminal(&self) -> bool {
        before_terminal(self.session_lost_us, self.first_terminal_us())
    }

    /// Whether it ended with `job_done`.
    pub fn is_done(&self) -> bool {
        matches!(self.first_terminal().map(|t| &t.what), Some(Terminal::Done { .. }))
    }

    /// Whether the agent answered it at admission without running it: its
    /// first terminal carries an [`ADMISSION_CODES`] code and no chunk came.
    pub fn rejected_at_admission(&self) -> bool {
        let code = self.first_terminal().and_then(|t| t.what.error_code());
        self.chunks.is_empty() && code.is_some_and(|c| ADMISSION_CODES.contains(&c))
    }

    /// Whether the agent may have run it, i.e. may have sent a backend
    /// request for it (see [`TraceView::executions_of_send`]): a well-formed
    /// submission not answered at admission. A re-send written while an
    /// earlier submission of the id was live (`id_was_free` false) is
    /// normally answered `duplicate_job`; without any frame of its own it
    /// shows no sign of having been admitted and is taken as not run.
    pub fn may_have_run(&self) -> bool {
        let well_formed = matches!(self.kind, JobKind::Normal | JobKind::Duplicate);
        let unknown_resend = self.id_was_free == Some(false) && self.chunks.is_empty() && self.terminals.is_empty();
        well_formed && !self.rejected_at_admission() && !unknown_resend
    }

    /// How details name it: `submission #N` for an original, `N` being the
    /// scenario's `job = N` number; `#N re-send K` for a re-send;
    /// `malformed K` for a broken frame (see [`super::name`]).
    pub fn label(&self) -> String {
        match self.name {
            SubName::Job(_) => format!("submission {}", self.name),
            _ => self.name.to_string(),
        }
    }
}

/// Whether `event` happened and came before `terminal` (or there was none).
fn before_terminal(event: Option<u64>, terminal: Option<u64>) -> bool {
    match (event, terminal) {
        (Some(event), Some(terminal)) => event < terminal,
        (Some(_), None) => true,
        _ => false,
    }
}

/// One frame of a job read by the coordinator: a chunk (`what` is its
/// length) or a terminal frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen<T> {
    pub at_us: u64,
    /// Index of the event in the trace.
    pub seq: usize,
    pub conn: u64,
    pub what: T,
}

/// Everything the coordinator saw of one job id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobView {
    pub job: JobId,
    /// Every submission written with this id, in write order.
    pub sends: Vec<JobSend>,
    /// `(sub, kind)` of submissions that were never written.
    pub undeliverable: Vec<(u64, JobKind)>,
    /// Chunks the coordinator attributed to no submission.
    pub stray_chunks: Vec<Seen<u64>>,
    /// Terminal frames the coordinator attributed to no submission.
    pub stray_terminals: Vec<Seen<Terminal>>,
    /// Agent view: when the agent admitted or rejected a job with this id,
    /// in order (one decision per `job` frame it read).
    pub agent_decisions_us: Vec<u64>,
    /// Agent view: how many of those decisions were `out_of_capacity`
    /// rejections.
    pub agent_out_of_capacity: u64,
}

impl JobView {
    /// The first submission, if the job was ever sent.
    pub fn first_send(&self) -> Option<&JobSend> {
        self.sends.first()
    }

    /// The submission numbered `sub`.
    pub fn send(&self, sub: u64) -> Option<&JobSend> {
        self.sends.iter().find(|s| s.sub == sub)
    }

    pub(super) fn send_mut(&mut self, sub: u64) -> Option<&mut JobSend> {
        self.sends.iter_mut().find(|s| s.sub == sub)
    }
}
