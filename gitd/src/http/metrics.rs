//! `GET /v1/apps/{app}/metrics?period=1h|24h`: the app's CPU, memory and request series and its
//! deploy and restart markers (see `paas_api::metrics::AppMetrics`), pulled from the agent first
//! so the newest round is in.

use axum::extract::State;
use chrono::Utc;
use paas_api::AppName;
use paas_api::metrics::{AppMetrics, MetricsQuery};

use super::{ApiResult, AuthUser, Json, Path, Query};
use crate::metrics;
use crate::state::SharedState;

pub async fn app_metrics(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<MetricsQuery>,
) -> ApiResult<Json<AppMetrics>> {
    let app = auth.app(&state, &name).await?;
    // What is stored is answered even while the agent is away.
    if let Err(err) = metrics::pull(&state).await {
        tracing::debug!(error = %err, "answering metrics without a fresh pull");
    }
    let to = Utc::now();
    let resolution = metrics::resolution_of(query.period);
    let from = to.timestamp() - query.period.seconds();
    let rows = state.store.app_metrics(app.id, resolution, from).await?;
    Ok(Json(metrics::app_metrics(name, query.period, to, rows)))
}
