//! The driver's actions: issuing jobs, re-sending duplicates, sending
//! malformed and unknown frames, cancels and disconnects. Each is a short
//! synchronous step: it records the submission, then queues the frame on a
//! connection's outbound queue without waiting.

use tokio::sync::mpsc::error::TrySendError;

use crate::clock::ms_to_us;
use crate::coordinator::{Coordinator, SessionHandle};
use crate::driver::{Pending, Relative};
use crate::frames::{self, JobSpec};
use crate::plan::{JobDraw, draw_job};
use crate::record::{CancelTrigger, JobKind, JobRecord};
use crate::resend::{Armed, Due};
use crate::script::{CancelKind, DisconnectKind, ResendAfter};
use crate::writer::{Effect, Outgoing};

/// Why a queued frame did not make it into a connection's queue.
fn queue_error<T>(e: &TrySendError<T>) -> &'static str {
    match e {
        TrySendError::Full(_) => "outbound queue full",
        TrySendError::Closed(_) => "connection closing",
    }
}

impl Coordinator {
    fn note(&self, what: String) {
        let at_us = self.now_us();
        self.log().with(|s| s.note(at_us, what));
    }

    /// Records a submission and hands its frame to the newest session; a job
    /// without one is recorded as undeliverable. Returns the record index
    /// and whether the frame was queued.
    fn submit(&self, mut record: JobRecord, text: String) -> (usize, bool) {
        let mut target = self.newest_session();
        record.conn = target.as_ref().map(|(conn, _)| *conn);
        if target.is_none() {
            record.undeliverable = Some("no authenticated session".into());
        } else if let Some(why) = crate::routing::refusal(self, record.conn, &record.model) {
            record.undeliverable = Some(why);
            target = None;
        }
        let index = self.log().with(|s| s.push_job(record));
        let Some((_, handle)) = target else {
            return (index, false);
        };
        let out = Outgoing::Text {
            text,
            effect: Effect::JobWritten(index),
        };
        match handle.queue.try_send(out) {
            Ok(()) => (index, true),
            Err(e) => {
                let why = queue_error(&e);
                self.log().with(|s| {
                    if let Some(job) = s.jobs.get_mut(index) {
                        job.undeliverable.get_or_insert_with(|| why.into());
                    }
                });
                (index, false)
            }
        }
    }

    /// The cancel triggers that select job `arrival`.
    fn cancel_plan(&self, arrival: u64, draws: &[f64]) -> Vec<CancelTrigger> {
        let rules = self.script().cancels.iter().enumerate();
        let selected = rules.filter(|(i, rule)| match rule.job {
            Some(job) => job == arrival,
            None => draws.get(*i).is_some_and(|d| *d < rule.fraction_or_all()),
        });
        selected
            .map(|(rule, r)| match r.kind {
                CancelKind::At => CancelTrigger::At {
                    rule,
                    at_ms: r.at_ms.unwrap_or(0),
                },
                CancelKind::AfterChunks => CancelTrigger::AfterChunks {
                    rule,
                    after_chunks: r.after_chunks.unwrap_or(1),
                },
                CancelKind::Fraction => CancelTrigger::AfterSend {
                    rule,
                    delay_ms: r.delay_ms.unwrap_or(0),
                },
                CancelKind::RaceCompletion => CancelTrigger::RaceCompletion { rule },
            })
            .collect()
    }

    /// Issues a job of arrival process `rule`; returns its record index and
    /// whether it was queued on a connection.
    fn issue(&self, rule: usize, draw: JobDraw, scheduled_us: u64, pending: &mut Pending) -> (usize, bool) {
        let script = self.script();
        let arrival = self.log().with(|s| {
            s.progress.next_arrival += 1;
            s.progress.next_arrival - 1
        });
        let deadline_ms = script.deadline_for(script.arrivals.get(rule));
        let job_id = script.job_id_spelling.spell(draw.job_id, arrival);
        let spec = JobSpec {
            job_id: &job_id,
            model: &draw.model,
            deadline_ms,
            template: &script.request,
        };
        let text = frames::job(&spec);
        let mut record = JobRecord::new(0, JobKind::Normal, job_id.as_str().into(), draw.model.as_str().into());
        record.arrival = Some(arrival);
        record.rule = Some(rule);
        record.deadline_ms = deadline_ms;
        record.scheduled_us = scheduled_us;
        record.cancel_plan = self.cancel_plan(arrival, &draw.cancel_draws);
        let after_send: Vec<u64> = record
            .cancel_plan
            .iter()
            .filter_map(|t| match t {
                CancelTrigger::AfterSend { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect();
        let (index, queued) = self.submit(record, text);
        if queued {
            let now_us = self.now_us();
            for delay_ms in after_send {
                pending.push(
                    now_us.saturating_add(delay_ms.saturating_mul(1000)),
                    Relative::Cancel { record: index },
                );
            }
            self.log().with(|s| {
                for (rule, d) in script.duplicates.iter().enumerate().filter(|(_, d)| d.job == arrival) {
                    match d.after {
                        ResendAfter::Sent => {
                            let due_us = now_us.saturating_add(ms_to_us(d.delay_ms));
                            let due = Due {
                                record: index,
                                rule,
                                scheduled_us: due_us,
                            };
                            s.resends.schedule(due_us, due);
                        }
                        after => s.resends.arm(Armed {
                            record: index,
                            rule,
                            after,
                            delay_ms: d.delay_ms,
                        }),
                    }
                }
            });
        } else if script.duplicates.iter().any(|d| d.job == arrival) {
            self.note(format!(
                "duplicates of job {arrival} skipped: the job itself was not delivered"
            ));
        }
        (index, queued)
    }

    /// Issues `plan.jobs[i]`.
    pub(crate) fn issue_planned(&self, i: usize, at_us: u64, pending: &mut Pending) {
        if let Some(job) = self.plan().jobs.get(i) {
            self.issue(job.rule, job.draw.clone(), at_us, pending);
        }
    }

    /// Issues the next job of closed loop `rule`, drawing its identity from
    /// the log's RNG now. Returns the record index if it was queued.
    pub(crate) fn issue_closed(&self, rule: usize, now_us: u64, pending: &mut Pending) -> Option<usize> {
        let script = self.script();
        let draw = self.log().with(|s| {
            *s.progress.closed_issued.entry(rule).or_default() += 1;
            s.schedule
                .as_mut()
                .map(|sch| draw_job(&mut sch.rng, script, Some(rule)))
        })?;
        let (index, queued) = self.issue(rule, draw, now_us, pending);
        queued.then_some(index)
    }

    /// Re-sends the exact frame of `due.record` as a new submission, unless
    /// the resend guard holds it back (it is then due again later).
    pub(crate) fn send_duplicate(&self, due: Due, now_us: u64) {
        let original = self.log().with(|s| {
            s.jobs
                .get(due.record)
                .map(|j| (j.job_id.clone(), j.model.clone(), j.deadline_ms, j.arrival))
        });
        let Some((job_id, model, deadline_ms, Some(arrival))) = original else {
            return;
        };
        if let Some(release_us) = self.resend_held_until(&job_id, now_us) {
            let what = format!(
                "duplicates[{}]: re-send of job {arrival} held back until {release_us} us: a cancelled \
                 submission of its id may still deliver frames until then (resend_guard_ms)",
                due.rule
            );
            self.log().with(|s| {
                s.note(now_us, what);
                s.resends.schedule(release_us, due);
            });
            return;
        }
        let spec = JobSpec {
            job_id: &job_id,
            model: &model,
            deadline_ms,
            template: &self.script().request,
        };
        let text = frames::job(&spec);
        let mut dup = JobRecord::new(0, JobKind::Duplicate { of: arrival }, job_id, model);
        dup.deadline_ms = deadline_ms;
        dup.scheduled_us = due.scheduled_us;
        let (_, queued) = self.submit(dup, text);
        if !queued {
            self.note(format!(
                "duplicates[{}]: re-send of job {arrival} not delivered",
                due.rule
            ));
        }
    }

    /// When a re-send of `job_id` due at `now_us` may be written, if not
    /// now: `resend_guard_ms` of reading time after the `job_cancel` of
    /// every submission of the id on the target connection that was
    /// cancelled without a terminal frame and not yet superseded. A cancel
    /// for the id still in the outbound queue has not started its guard
    /// (nor is it known yet which submissions it will reach): the re-send
    /// looks again one guard later (the queue drains in order, so that is
    /// bounded by the connection's life).
    fn resend_held_until(&self, job_id: &str, now_us: u64) -> Option<u64> {
        let guard_us = ms_to_us(self.script().resend_guard_ms);
        if guard_us == 0 {
            return None;
        }
        let (conn, _) = self.newest_session()?;
        let release_us = self.log().with(|s| {
            let chain: Vec<&JobRecord> = s.chain(conn, job_id).into_iter().map(|i| &s.jobs[i]).collect();
            let queued = chain
                .iter()
                .any(|j| j.cancel_in_queue)
                .then(|| now_us.saturating_add(guard_us));
            let written = chain
                .iter()
                .filter(|j| j.terminals.is_empty() && j.superseded_us.is_none() && j.session_lost_us.is_none())
                .filter_map(|j| j.cancel_sent_us)
                .map(|cancel_us| self.script().after_reading_us(cancel_us, guard_us));
            written.chain(queued).max()
        })?;
        (release_us > now_us).then_some(release_us)
    }

    /// Whether an armed re-send can still fire, once the timeline and every
    /// relative cancel are done; the ones that cannot are dropped with a
    /// note. A re-send timed from the terminal frame waits while its
    /// original awaits one and no cancel was queued for it; one timed from
    /// a cancel, while its original is still open (a chunk-driven cancel
    /// may yet come).
    pub(crate) fn resends_may_fire(&self, now_us: u64) -> bool {
        self.log().with(|s| {
            let jobs = &s.jobs;
            let dead = s.resends.disarm(|a| {
                jobs.get(a.record).is_none_or(|j| {
                    let open = j.is_open() && j.superseded_us.is_none();
                    match a.after {
                        ResendAfter::Terminal => !open || j.cancel_queued || j.cancel_sent_us.is_some(),
                        ResendAfter::Cancel | ResendAfter::Sent => !open || j.cancel_sent_us.is_some(),
                    }
                })
            });
            for a in &dead {
                let arrival = s.jobs.get(a.record).and_then(|j| j.arrival).unwrap_or_default();
                let event = match a.after {
                    ResendAfter::Terminal => "a terminal frame (uncancelled)",
                    _ => "a cancel",
                };
                let what = format!(
                    "duplicates[{}]: job {arrival} ended without {event}; not re-sent",
                    a.rule
                );
                s.note(now_us, what);
            }
            !s.resends.armed().is_empty()
        })
    }

    /// Sends `script.malformed[i]`.
    pub(crate) fn send_malformed(&self, i: usize, at_us: u64) {
        let (Some((id, model)), Some(rule)) = (self.plan().malformed.get(i), self.script().malformed.get(i)) else {
            return;
        };
        let id = id.to_string();
        let deadline_ms = self.script().deadline_for(None);
        let spec = JobSpec {
            job_id: &id,
            model,
            deadline_ms,
            template: &self.script().request,
        };
        let (text, job_id) = frames::malformed(&spec, rule.kind);
        let mut record = JobRecord::new(0, JobKind::Malformed(rule.kind), job_id.into(), model.as_str().into());
        record.deadline_ms = deadline_ms;
        record.scheduled_us = at_us;
        self.submit(record, text);
    }

    /// Sends `script.unknown_types[i]` on the newest session.
    pub(crate) fn send_unknown_type(&self, i: usize, at_us: u64) {
        let Some(rule) = self.script().unknown_types.get(i) else {
            return;
        };
        let Some((_, handle)) = self.newest_session() else {
            return self.note(format!(
                "unknown_types[{i}] due at {at_us} us: no authenticated session"
            ));
        };
        let out = Outgoing::Text {
            text: frames::unknown(&rule.type_name, &rule.fields),
            effect: Effect::None,
        };
        if let Err(e) = handle.queue.try_send(out) {
            self.note(format!("unknown_types[{i}]: {}", queue_error(&e)));
        }
    }

    /// Queues a cancel for `jobs[index]` on its own connection.
    fn send_cancel(&self, index: usize, job_id: &str, handle: &SessionHandle, origin: &str) {
        self.log().with(|s| {
            s.jobs.get_mut(index).map(|j| {
                j.cancel_queued = true;
                j.cancel_in_queue = true;
            })
        });
        let out = Outgoing::Text {
            text: frames::cancel(job_id),
            effect: Effect::CancelWritten(index),
        };
        if let Err(e) = handle.queue.try_send(out) {
            let what = format!("{origin}: cancel for job {job_id} {}", queue_error(&e));
            let at_us = self.now_us();
            self.log().with(|s| {
                if let Some(j) = s.jobs.get_mut(index) {
                    j.cancel_in_queue = false;
                }
                s.note(at_us, what);
            });
        }
    }

    /// `cancels[i]` of kind `at`: cancels its job on the job's connection,
    /// whether or not the job has finished.
    pub(crate) fn cancel_at(&self, i: usize, now_us: u64) {
        let Some(job) = self.script().cancels.get(i).and_then(|r| r.job) else {
            return;
        };
        let origin = format!("cancels[{i}] at {now_us} us");
        let target = self.log().with(|s| {
            let j = s
                .jobs
                .iter()
                .find(|j| j.arrival == Some(job) && j.kind == JobKind::Normal)?;
            Some((j.index, j.job_id.clone(), j.conn))
        });
        let Some((index, job_id, conn)) = target else {
            return self.note(format!("{origin}: job {job} has not been issued"));
        };
        match conn.and_then(|c| self.session(c)) {
            Some(handle) => self.send_cancel(index, &job_id, &handle, &origin),
            None => self.note(format!("{origin}: the connection of job {job} is gone")),
        }
    }

    /// A relative cancel: only while the job is still in flight.
    pub(crate) fn cancel_if_open(&self, index: usize) {
        let target = self.log().with(|s| {
            let j = s.jobs.get(index).filter(|j| j.is_open() && !j.cancel_queued)?;
            Some((j.job_id.clone(), j.conn?))
        });
        if let Some((job_id, conn)) = target
            && let Some(handle) = self.session(conn)
        {
            self.send_cancel(index, &job_id, &handle, "fraction cancel");
        }
    }

    /// `disconnects[i]`: ends every authenticated connection.
    pub(crate) fn disconnect(&self, i: usize, now_us: u64) {
        let Some(rule) = self.script().disconnects.get(i) else {
            return;
        };
        let sessions = self.all_sessions();
        if sessions.is_empty() {
            return self.note(format!("disconnects[{i}] at {now_us} us: no authenticated session"));
        }
        for (_, handle) in sessions {
            let queued = rule.kind == DisconnectKind::Close
                && handle
                    .queue
                    .try_send(Outgoing::Disconnect(DisconnectKind::Close))
                    .is_ok();
            if !queued {
                handle.drop_now.notify_one();
            }
        }
    }
}
