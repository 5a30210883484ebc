//! `backfill schedules` and `backfill universes`: clients of a running `backfill serve`.

use std::io::Write;

use anyhow::Context;
use backfill_api::{ScheduleBody, SchedulesBody, UniversesBody};
use backfill_domain::{NamedUniverse, Tickers};
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{SchedulesAction, SchedulesArgs, UniversesAction, UniversesArgs};
use crate::commands::client;

pub(crate) async fn schedules(args: SchedulesArgs) -> anyhow::Result<()> {
    let (method, path, body) = schedule_request(&args.action);
    let answer = client::call(&args.server, method, &path, body).await?;
    let mut out = std::io::stdout().lock();
    match (&args.action, args.server.json) {
        (SchedulesAction::Delete { name }, _) => writeln!(out, "schedule {name} deleted")?,
        (_, true) => client::json(&mut out, &answer)?,
        (SchedulesAction::List, false) => {
            let list: SchedulesBody = decode(&answer)?;
            writeln!(
                out,
                "{:<20}  {:<16}  {:<10}  {:<20}  {:<20}  tickers",
                "schedule", "trigger", "timeframes", "next due (UTC)", "last run"
            )?;
            for s in list.schedules {
                writeln!(
                    out,
                    "{:<20}  {:<16}  {:<10}  {:<20}  {:<20}  {}",
                    s.spec.name().as_str(),
                    s.spec.trigger().to_string(),
                    timeframes(&s),
                    next_due(&s),
                    last_run(&s),
                    tickers(s.spec.tickers()),
                )?;
            }
        }
        (_, false) => {
            let s: ScheduleBody = decode(&answer)?;
            writeln!(out, "schedule   {}", s.spec.name())?;
            writeln!(out, "tickers    {}", tickers(s.spec.tickers()))?;
            writeln!(
                out,
                "keeps      {} {}, {} days back, source {}",
                timeframes(&s),
                if s.spec.adjusted() { "adjusted" } else { "raw" },
                s.spec.lookback_days(),
                s.spec
                    .source()
                    .and_then(|c| serde_json::to_value(c).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "default".to_owned())
            )?;
            writeln!(out, "trigger    {} (New York time)", s.spec.trigger())?;
            writeln!(out, "next due   {}", next_due(&s))?;
            writeln!(out, "runs       {}", s.runs)?;
            if let Some(run) = &s.last_run {
                writeln!(out, "last run   due {}, fired {}", run.due_at, run.fired_at)?;
                match &run.error {
                    Some(error) => writeln!(out, "           no job: {error}")?,
                    None => {
                        for id in &run.job_ids {
                            writeln!(out, "           job {id}")?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn universes(args: UniversesArgs) -> anyhow::Result<()> {
    let (method, path, body) = universe_request(&args.action)?;
    let answer = client::call(&args.server, method, &path, body).await?;
    let mut out = std::io::stdout().lock();
    match (&args.action, args.server.json) {
        (UniversesAction::Delete { name }, _) => writeln!(out, "universe {name} deleted")?,
        (_, true) => client::json(&mut out, &answer)?,
        (UniversesAction::List, false) => {
            let list: UniversesBody = decode(&answer)?;
            writeln!(
                out,
                "{:<20}  {:>8}  {:<20}  origin",
                "universe", "symbols", "updated (UTC)"
            )?;
            for u in list.universes {
                writeln!(
                    out,
                    "{:<20}  {:>8}  {:<20}  {}",
                    u.name.as_str(),
                    u.symbols,
                    u.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    u.origin
                )?;
            }
        }
        (_, false) => {
            let u: NamedUniverse = decode(&answer)?;
            writeln!(out, "universe   {}", u.name)?;
            writeln!(out, "origin     {}", u.origin)?;
            writeln!(out, "updated    {}", u.updated_at)?;
            writeln!(out, "symbols    {}", u.symbols.len())?;
            let names: Vec<&str> = u.symbols.iter().map(|s| s.as_str()).collect();
            for line in names.chunks(12) {
                writeln!(out, "  {}", line.join(" "))?;
            }
        }
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).context("decoding the answer")
}

fn schedule_request(action: &SchedulesAction) -> (Method, String, Option<Value>) {
    let one = |name: &str| format!("/api/v1/schedules/{}", encode(name));
    match action {
        SchedulesAction::List => (Method::GET, "/api/v1/schedules".to_owned(), None),
        SchedulesAction::Show { name } => (Method::GET, one(name), None),
        SchedulesAction::Pause { name } => (Method::POST, format!("{}/pause", one(name)), None),
        SchedulesAction::Resume { name } => (Method::POST, format!("{}/resume", one(name)), None),
        SchedulesAction::Delete { name } => (Method::DELETE, one(name), None),
        SchedulesAction::Create(c) => {
            let mut body = json!({
                "name": c.name,
                "timeframes": c.timeframes,
                "trigger": c.trigger,
                "lookback_days": c.lookback_days,
                "adjusted": c.adjusted,
            });
            match &c.universe {
                Some(universe) => body["universe"] = json!(universe),
                None => body["symbols"] = json!(c.symbols),
            }
            if let Some(source) = &c.source {
                body["source"] = json!(source);
            }
            (Method::POST, "/api/v1/schedules".to_owned(), Some(body))
        }
    }
}

fn universe_request(action: &UniversesAction) -> anyhow::Result<(Method, String, Option<Value>)> {
    let one = |name: &str| format!("/api/v1/universes/{}", encode(name));
    Ok(match action {
        UniversesAction::List => (Method::GET, "/api/v1/universes".to_owned(), None),
        UniversesAction::Show { name } => (Method::GET, one(name), None),
        UniversesAction::Delete { name } => (Method::DELETE, one(name), None),
        UniversesAction::Set { name, symbols } => {
            (Method::PUT, one(name), Some(json!({ "symbols": symbols })))
        }
        UniversesAction::Refresh {
            name,
            status,
            date,
            kind,
        } => {
            let mut body = json!({ "status": status });
            if let Some(date) = date {
                let date: chrono::NaiveDate = date
                    .parse()
                    .with_context(|| format!("invalid --date {date:?}: expected YYYY-MM-DD"))?;
                body["date"] = json!(date);
            }
            if let Some(kind) = kind {
                body["type"] = json!(kind);
            }
            (Method::POST, format!("{}/refresh", one(name)), Some(body))
        }
    })
}

/// A name as a path segment: names are letters, digits and `._-`; anything else is
/// percent-encoded so the server answers its own error about it.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn timeframes(s: &ScheduleBody) -> String {
    s.spec
        .timeframes()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn next_due(s: &ScheduleBody) -> String {
    match (s.paused, s.next_due_at) {
        (true, _) => "paused".to_owned(),
        (false, Some(t)) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        (false, None) => "never".to_owned(),
    }
}

fn last_run(s: &ScheduleBody) -> String {
    match &s.last_run {
        None => "-".to_owned(),
        Some(run) if run.error.is_some() => {
            format!("{} failed", run.due_at.format("%Y-%m-%d %H:%M"))
        }
        Some(run) => format!(
            "{} {} job{}",
            run.due_at.format("%Y-%m-%d %H:%M"),
            run.job_ids.len(),
            if run.job_ids.len() == 1 { "" } else { "s" }
        ),
    }
}

fn tickers(t: &Tickers) -> String {
    match t {
        Tickers::All => "all (every ticker of the source)".to_owned(),
        Tickers::Universe(name) => format!("universe {name}"),
        Tickers::Symbols(list) => {
            let mut text = list
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",");
            if text.len() > 60 {
                text.truncate(57);
                text.push_str("...");
            }
            text
        }
    }
}
