//! Reports: `GET /api/v1/reports/csat?from=&to=` (satisfaction per
//! operator and team), and the survey's switch, `GET`/`PUT
//! /api/v1/settings/csat`.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use seamline_core::inbox::csat::{by_operator, by_team, Rating, Summary};
use seamline_core::role::Permission;
use seamline_core::{MemberId, TeamId};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::inbox::automation::csat::{save_settings, settings_of, CsatSettings};
use crate::AppState;

/// The default period: the last 30 days.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Deserialize)]
pub struct Period {
    /// RFC 3339, inclusive; default 30 days before `to`.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<String>,
}

impl Period {
    /// `from` and `to` as given, or the 30 days up to now.
    pub(crate) fn resolve(&self) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
        let to = match &self.to {
            Some(raw) => time(raw, "to")?,
            None => Utc::now(),
        };
        let from = match &self.from {
            Some(raw) => time(raw, "from")?,
            None => to - TimeDelta::days(DEFAULT_DAYS),
        };
        if from >= to {
            return Err(ApiError::field(
                "invalid_period",
                "from",
                "from must be before to",
            ));
        }
        Ok((from, to))
    }
}

#[derive(Debug, Serialize)]
pub struct CsatReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total: Figures,
    pub operators: Vec<OperatorFigures>,
    pub teams: Vec<TeamFigures>,
}

/// A summary as read: `average` 1 to 5 and `satisfied_share` 0 to 1 (4s
/// and 5s), both null before any answer.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub count: u64,
    pub average: Option<f64>,
    pub satisfied_share: Option<f64>,
}

impl From<Summary> for Figures {
    fn from(summary: Summary) -> Self {
        Self {
            count: summary.count,
            average: summary.average(),
            satisfied_share: summary.satisfied_share(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OperatorFigures {
    pub member_id: MemberId,
    /// Empty for a member who has left.
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Serialize)]
pub struct TeamFigures {
    pub team_id: TeamId,
    /// Empty for a team that was deleted.
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

pub async fn csat(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(period): ApiQuery<Period>,
) -> ApiResult<Json<CsatReport>> {
    principal.require(Permission::ReadData)?;
    let (store, ws) = (state.store.as_ref(), principal.workspace);
    let (from, to) = period.resolve()?;
    let ratings: Vec<Rating> = store
        .ratings(ws, from, to)
        .await?
        .into_iter()
        .map(|r| r.rating)
        .collect();
    let members: HashMap<MemberId, String> = store
        .list_members(ws)
        .await?
        .into_iter()
        .map(|m| (m.id, if m.name.is_empty() { m.email } else { m.name }))
        .collect();
    let teams: HashMap<TeamId, String> = store
        .list_teams(ws)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    Ok(Json(CsatReport {
        from,
        to,
        total: ratings.iter().map(|r| r.score).collect::<Summary>().into(),
        operators: by_operator(&ratings)
            .into_iter()
            .map(|(member_id, summary)| OperatorFigures {
                member_id,
                name: members.get(&member_id).cloned().unwrap_or_default(),
                figures: summary.into(),
            })
            .collect(),
        teams: by_team(&ratings)
            .into_iter()
            .map(|(team_id, summary)| TeamFigures {
                team_id,
                name: teams.get(&team_id).cloned().unwrap_or_default(),
                figures: summary.into(),
            })
            .collect(),
    }))
}

fn time(raw: &str, field: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::field("invalid_time", field, "an RFC 3339 time"))
}

pub async fn csat_settings(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<CsatSettings>> {
    principal.require(Permission::ReadData)?;
    Ok(Json(
        settings_of(state.store.as_ref(), principal.workspace).await?,
    ))
}

pub async fn put_csat_settings(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(settings): ApiJson<CsatSettings>,
) -> ApiResult<Json<CsatSettings>> {
    change_csat_settings(&state, &principal, settings).await?;
    Ok(Json(settings))
}

pub(crate) async fn change_csat_settings(
    state: &AppState,
    principal: &Principal,
    settings: CsatSettings,
) -> ApiResult<()> {
    principal.require(Permission::ManageTeams)?;
    save_settings(state.store.as_ref(), principal.workspace, settings).await?;
    tracing::info!(actor = ?principal.actor, survey = settings.survey, "csat settings changed");
    Ok(())
}
