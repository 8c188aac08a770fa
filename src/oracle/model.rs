//! A backend is asked for the model the coordinator routed the job to.
//!
//! protocol.md: the agent sets the request body's `model` to the job's
//! `model_id`, whatever `request.model` says. A job routed (and priced) as
//! a cheap allow-listed model must never reach another model on the
//! operator's GPU or BYOK key. Judged from outside: every chat-completion
//! request a backend recorded for a job id must have asked for the
//! `model_id` of a `job` frame of that id the coordinator wrote before the
//! request started. The agent maps a `model_id` to the backend by name,
//! one to one (it advertises the names the backends serve, and BYOK
//! backends list upstream names that are the ids), so the name the backend
//! saw and the routed `model_id` must be equal; an agent that renamed models
//! would have to advertise the backend's names.
//!
//! Excused: a request whose job id the coordinator never wrote before it
//! started (nothing routed it; other rules judge a request nobody asked for).

use super::{OracleConfig, Rule, Tally, Violation};
use crate::trace::TraceView;

/// The routed model is the model asked for.
pub const ROUTED_MODEL: Rule = Rule {
    name: "backend_model_is_routed",
    summary: "every backend chat request of a job asks for the job's model_id, never the request's own `model`",
    check: routed_model,
};

fn routed_model(view: &TraceView, _config: &OracleConfig, tally: &mut Tally) -> Vec<Violation> {
    let mut found = Vec::new();
    for call in view.backend_calls.iter().filter(|call| call.is_execution()) {
        let Some(job) = call.job.as_deref() else {
            continue;
        };
        let routed: Vec<&str> = view
            .jobs
            .get(job)
            .map(|j| j.sends.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|send| send.at_us <= call.start_us)
            .map(|send| &*send.model)
            .collect();
        if routed.is_empty() {
            tally.excuse("no job frame of its id was written before it");
            continue;
        }
        tally.judge();
        let asked = call.model.as_deref();
        if asked.is_some_and(|model| routed.contains(&model)) {
            continue;
        }
        let asked = asked.map_or_else(|| "no model".to_owned(), |model| format!("model `{model}`"));
        let detail = format!(
            "{} request {} asked for {asked}; the coordinator routed the job to model_id `{}`",
            call.backend,
            call.request,
            routed.last().copied().unwrap_or_default()
        );
        found.push(Violation::new(ROUTED_MODEL.name, Some(job), call.start_us, detail));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::handmade::TraceBuilder;

    fn judge(builder: TraceBuilder) -> (Vec<Violation>, Tally) {
        let trace = builder.build();
        let view = TraceView::build(&trace.events);
        let mut tally = Tally::default();
        let found = routed_model(&view, &OracleConfig::for_handmade_traces(), &mut tally);
        (found, tally)
    }

    fn routed(model: Option<&str>) -> TraceBuilder {
        TraceBuilder::new()
            .session_serving(0, 1, &["cheap", "premium"])
            .job_for_model(10, "j1", 1, 5_000, "cheap")
            .backend_for_model(12, 40, "j1", model)
            .done(41, "j1", 1)
    }

    /// A request for the routed model passes and is judged.
    #[test]
    fn the_routed_model_passes() {
        let (found, tally) = judge(routed(Some("cheap")));
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(tally.judged, 1);
    }

    /// The request's own `model` reaching the backend is a violation,
    /// naming both models.
    #[test]
    fn another_model_is_a_violation() {
        let (found, _) = judge(routed(Some("premium")));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].job.as_deref(), Some("j1"));
        assert!(
            found[0].detail.contains("asked for model `premium`") && found[0].detail.contains("model_id `cheap`"),
            "{}",
            found[0].detail
        );
    }

    /// A chat request with no `model` at all is a violation too.
    #[test]
    fn no_model_is_a_violation() {
        let (found, _) = judge(routed(None));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("asked for no model"), "{}", found[0].detail);
    }

    /// A re-sent id routed to another model may run either submission's.
    #[test]
    fn any_earlier_submission_of_the_id_routes_it() {
        let builder = TraceBuilder::new()
            .session_serving(0, 1, &["cheap", "premium"])
            .job_for_model(10, "j1", 1, 5_000, "premium")
            .cancel(11, "j1", 1)
            .job_for_model(20, "j1", 1, 5_000, "cheap")
            .backend_for_model(22, 40, "j1", Some("premium"));
        let (found, tally) = judge(builder);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(tally.judged, 1);
    }

    /// A request whose id no job frame carried before it is excused.
    #[test]
    fn a_request_before_any_job_frame_is_excused() {
        let builder = TraceBuilder::new()
            .session_serving(0, 1, &["cheap"])
            .backend_for_model(5, 8, "j9", Some("cheap"))
            .job_for_model(10, "j9", 1, 5_000, "cheap");
        let (found, tally) = judge(builder);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!((tally.judged, tally.excused.values().sum::<u64>()), (0, 1));
    }
}
