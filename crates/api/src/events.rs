//! A job's live progress as Server-Sent Events.
//!
//! A stream re-reads its job from storage whenever something may have changed: when a worker in
//! this process publishes an event for the job on the [`ProgressBus`], and in any case every
//! poll interval, so it follows jobs run by any worker process. It sends a `progress` event
//! whenever the job or one of its tasks changed, never more often than the minimum interval, a
//! `done` event once the job has ended and none of its tasks still runs, and then closes.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use backfill_domain::ProgressEvent;
use backfill_domain::{BackfillJob, JobId, Task, TaskStatus};
use backfill_progress::{Receiver, RecvError};
use backfill_storage::JobDetails;
use chrono::{DateTime, Utc};
use futures::stream;
use serde::Serialize;
use tokio::time::{sleep_until, Instant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::AppPath;
use crate::jobs::{parse_job_id, JobStatusBody};
use crate::state::AppState;

/// The event sent whenever the job changed.
pub const PROGRESS_EVENT: &str = "progress";
/// The last event, once the job has ended.
pub const DONE_EVENT: &str = "done";
/// Sent instead of `done` when the job can no longer be read; the stream then closes.
pub const ERROR_EVENT: &str = "error";

/// The progress stream route.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_events))
}

/// Follow a job live (Server-Sent Events).
///
/// Event `progress` (data: the status body) first with the current state and then on every
/// change, at most about four a second; event `done` (data: the final status body) when the
/// job has ended and none of its symbols is still running, after which the stream closes.
/// Event `error` (data: the error shape) if the job can no longer be read. Comments keep idle
/// connections open.
#[utoipa::path(
    get,
    path = "/api/v1/backfill/{job_id}/events",
    tag = "jobs",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "A text/event-stream of `progress` events, then one `done` event; each event's data is a JSON status body", content_type = "text/event-stream", body = JobStatusBody),
        (status = 400, description = "invalid_job_id", body = ErrorBody),
        (status = 404, description = "not_found: no such job (answered before the stream starts)", body = ErrorBody),
    )
)]
pub(crate) async fn job_events(
    State(state): State<AppState>,
    AppPath(job_id): AppPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_job_id(&job_id)?;
    // Subscribe before the first read, so that no change between the two is missed.
    let bus = state.progress().map(|bus| bus.subscribe());
    let first = state.jobs().get_job(id).await?;
    let keep_alive = KeepAlive::new().interval(state.config().sse_keep_alive());
    let watch = Watch::new(state, id, bus, first);
    let events = stream::unfold(watch, Watch::next_event);
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-like proxies not to buffer the stream.
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// The state of one stream.
struct Watch {
    state: AppState,
    id: JobId,
    bus: Option<Receiver<ProgressEvent>>,
    /// What the last `progress` event showed.
    last: Option<Snapshot>,
    last_read: Instant,
    pending: VecDeque<Event>,
    finished: bool,
}

/// What a `progress` event is about: the job and its tasks without the fields that change on
/// every heartbeat, so that only real progress makes an event.
#[derive(Debug, PartialEq)]
struct Snapshot {
    job: BackfillJob,
    tasks: Vec<Task>,
}

impl Snapshot {
    fn of(details: &JobDetails) -> Self {
        let tasks = details
            .tasks
            .iter()
            .map(|task| Task {
                lease_expires_at: None,
                updated_at: DateTime::UNIX_EPOCH,
                ..task.clone()
            })
            .collect();
        Self {
            job: details.job.clone(),
            tasks,
        }
    }
}

/// Whether a job has ended for good: a terminal status and no task still running. A running
/// task whose lease has expired (or that holds none) counts as stopped, since no worker will
/// finish it for an ended job.
fn is_settled(details: &JobDetails, now: DateTime<Utc>) -> bool {
    details.job.status.is_terminal()
        && details
            .tasks
            .iter()
            .all(|t| t.status != TaskStatus::Running || t.lease_expires_at.is_none_or(|l| l <= now))
}

/// Why a stream woke up.
enum Wake {
    /// The poll interval passed, or the bus said something changed.
    Check,
    /// The bus is gone (the worker stopped); polling continues.
    BusClosed,
}

impl Watch {
    fn new(
        state: AppState,
        id: JobId,
        bus: Option<Receiver<ProgressEvent>>,
        first: JobDetails,
    ) -> Self {
        let mut watch = Self {
            state,
            id,
            bus,
            last: None,
            last_read: Instant::now(),
            pending: VecDeque::new(),
            finished: false,
        };
        watch.observe(first);
        watch
    }

    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.finished {
                return None;
            }
            self.wait().await;
            self.last_read = Instant::now();
            match self.state.jobs().get_job(self.id).await {
                Ok(details) => self.observe(details),
                Err(err) => {
                    let body = ApiError::from(err).into_body();
                    self.pending.push_back(event(ERROR_EVENT, &body));
                    self.finished = true;
                }
            }
        }
    }

    /// Queues the events a fresh read of the job calls for.
    fn observe(&mut self, details: JobDetails) {
        let snapshot = Snapshot::of(&details);
        let settled = is_settled(&details, Utc::now());
        let changed = self.last.as_ref() != Some(&snapshot);
        if !changed && !settled {
            return;
        }
        let body = JobStatusBody::new(details, self.state.config());
        if changed {
            self.pending.push_back(event(PROGRESS_EVENT, &body));
            self.last = Some(snapshot);
        }
        if settled {
            self.pending.push_back(event(DONE_EVENT, &body));
            self.finished = true;
        }
    }

    /// Waits until the job may have changed (a bus event for it, or the poll interval), and
    /// at least the minimum interval since the last read.
    async fn wait(&mut self) {
        let config = self.state.config();
        let poll_deadline = self.last_read + config.sse_poll_interval();
        let earliest = self.last_read + config.sse_min_interval();
        let id = self.id;
        let wake = match &mut self.bus {
            Some(bus) => tokio::select! {
                wake = wait_for_job(bus, id) => wake,
                () = sleep_until(poll_deadline) => Wake::Check,
            },
            None => {
                sleep_until(poll_deadline).await;
                Wake::Check
            }
        };
        if let Wake::BusClosed = wake {
            self.bus = None;
        }
        sleep_until(earliest).await;
    }
}

/// Waits for a bus event about `id`. Events of other jobs are skipped; a lagging receiver
/// lost events, some of which may have been about this job, so it wakes too.
async fn wait_for_job(bus: &mut Receiver<ProgressEvent>, id: JobId) -> Wake {
    loop {
        match bus.recv().await {
            Ok(event) if event.job_id() == id => return Wake::Check,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return Wake::Check,
            Err(RecvError::Closed) => return Wake::BusClosed,
        }
    }
}

/// A named event with a JSON body.
fn event(name: &'static str, body: &impl Serialize) -> Event {
    match serde_json::to_string(body) {
        Ok(data) => Event::default().event(name).data(data),
        Err(err) => {
            tracing::error!(error = %err, "could not serialise an event");
            Event::default().comment("an event could not be serialised")
        }
    }
}
