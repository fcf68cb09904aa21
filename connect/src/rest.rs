//! Kafka Connect's REST API over a worker's herder ([`ConnectApi`]), with axum: the same endpoints, JSON shapes
//! and status codes, so scripts written against Kafka Connect work. Errors are
//! `{"error_code": <HTTP status>, "message": "..."}`.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | `{version, commit, kafka_cluster_id}` |
//! | `GET /connectors[?expand=status&expand=info]` | names, or `{name: {status, info}}` |
//! | `POST /connectors` `{name, config}` | 201 `{name, config, tasks, type}`; 409 if it exists |
//! | `GET /connectors/{name}` | `{name, config, tasks, type}` |
//! | `GET`/`PUT /connectors/{name}/config` | the config; PUT: 201 created, 200 updated |
//! | `GET /connectors/{name}/status` | `{name, connector: {state, worker_id}, tasks, type}` |
//! | `GET /connectors/{name}/tasks` | `[{id: {connector, task}, config}]` |
//! | `GET /connectors/{name}/tasks/{id}/status` | `{id, state, worker_id, trace?}` |
//! | `POST /connectors/{name}/restart[?includeTasks&onlyFailed]` | 204, or 202 with the status |
//! | `POST /connectors/{name}/tasks/{id}/restart` | 204 |
//! | `PUT /connectors/{name}/pause`, `resume`, `stop` | 202 |
//! | `DELETE /connectors/{name}` | 204 |
//! | `GET`/`PATCH`/`DELETE /connectors/{name}/offsets` | KIP-875 (PATCH and DELETE: STOPPED only) |
//! | `GET /connectors/{name}/topics`, `PUT .../topics/reset` | the topics it used |
//! | `GET /connectors/{name}/metrics` | Sluice's: records polled/written/skipped, commit latency |
//! | `GET /connector-plugins[?connectorsOnly=false]` | `[{class, type, version}]` |
//! | `PUT /connector-plugins/{plugin}/config/validate` | `{name, error_count, groups, configs}` |

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value as Json, json};
use std::future::Future;

use sluice_client::Client;

use crate::config::{Props, json_config};
use crate::connector::Plugins;
use crate::error::{Error, Result};
use crate::herder::Herder;
use crate::worker::TargetState;

/// What the REST API asks of a worker: a standalone [`Herder`] answers from its own
/// connectors, a [`DistributedHerder`](crate::distributed::DistributedHerder) for the whole
/// cluster (writes go to the config topic, statuses come from the status topic).
pub trait ConnectApi: Clone + Send + Sync + 'static {
    /// The plugins.
    fn plugins(&self) -> &Plugins;
    /// Validates a config against a plugin: the validate endpoint's JSON, and the error lines.
    fn validate(&self, plugin: &str, props: &Props) -> Result<(Json, Vec<String>)>;
    /// Names of the connectors, sorted.
    fn connectors(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// `{name, config, tasks, type}`.
    fn info(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
    /// The config.
    fn config(&self, name: &str) -> impl Future<Output = Result<Props>> + Send;
    /// Creates (409 if it exists) or, with `replace`, reconfigures a connector: whether it
    /// was created, and its info.
    fn put_connector(
        &self,
        name: &str,
        props: Props,
        replace: bool,
    ) -> impl Future<Output = Result<(bool, Json)>> + Send;
    /// Deletes a connector.
    fn delete(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// `{name, connector: {state, worker_id}, tasks, type}`.
    fn status(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
    /// `[{id: {connector, task}, config}]`.
    fn tasks(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
    /// One task's status.
    fn task_status(&self, name: &str, id: usize) -> impl Future<Output = Result<Json>> + Send;
    /// Restarts one task.
    fn restart_task(&self, name: &str, id: usize) -> impl Future<Output = Result<()>> + Send;
    /// Restarts a connector (and its tasks): the status with what restarts as RESTARTING.
    fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> impl Future<Output = Result<Json>> + Send;
    /// Pause, resume, stop.
    fn set_target(
        &self,
        name: &str,
        target: TargetState,
    ) -> impl Future<Output = Result<()>> + Send;
    /// KIP-875's offsets.
    fn offsets(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
    /// KIP-875's PATCH.
    fn alter_offsets(&self, name: &str, body: &Json) -> impl Future<Output = Result<Json>> + Send;
    /// KIP-875's DELETE.
    fn reset_offsets(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
    /// `{name: {topics: [...]}}`.
    fn topics(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
    /// Forgets the topics the connector used.
    fn reset_topics(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Sluice's task metrics.
    fn metrics(&self, name: &str) -> impl Future<Output = Result<Json>> + Send;
}

impl<C: Client> ConnectApi for Herder<C> {
    fn plugins(&self) -> &Plugins {
        Herder::plugins(self)
    }
    fn validate(&self, plugin: &str, props: &Props) -> Result<(Json, Vec<String>)> {
        Herder::validate(self, plugin, props)
    }
    async fn connectors(&self) -> Result<Vec<String>> {
        Ok(Herder::connectors(self).await)
    }
    async fn info(&self, name: &str) -> Result<Json> {
        Herder::info(self, name).await
    }
    async fn config(&self, name: &str) -> Result<Props> {
        Herder::config(self, name).await
    }
    async fn put_connector(&self, name: &str, props: Props, replace: bool) -> Result<(bool, Json)> {
        Herder::put_connector(self, name, props, replace).await
    }
    async fn delete(&self, name: &str) -> Result<()> {
        Herder::delete(self, name).await
    }
    async fn status(&self, name: &str) -> Result<Json> {
        Herder::status(self, name).await
    }
    async fn tasks(&self, name: &str) -> Result<Json> {
        Herder::tasks(self, name).await
    }
    async fn task_status(&self, name: &str, id: usize) -> Result<Json> {
        Herder::task_status(self, name, id).await
    }
    async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        Herder::restart_task(self, name, id).await
    }
    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<Json> {
        Herder::restart(self, name, include_tasks, only_failed).await
    }
    async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        Herder::set_target(self, name, target).await
    }
    async fn offsets(&self, name: &str) -> Result<Json> {
        Herder::offsets(self, name).await
    }
    async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json> {
        Herder::alter_offsets(self, name, body).await
    }
    async fn reset_offsets(&self, name: &str) -> Result<Json> {
        Herder::reset_offsets(self, name).await
    }
    async fn topics(&self, name: &str) -> Result<Json> {
        Herder::topics(self, name).await
    }
    async fn reset_topics(&self, name: &str) -> Result<()> {
        Herder::reset_topics(self, name).await
    }
    async fn metrics(&self, name: &str) -> Result<Json> {
        Herder::metrics(self, name).await
    }
}

/// An error as Kafka Connect answers it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.status_code();
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            axum::Json(json!({"error_code": code, "message": self.0.to_string()})),
        )
            .into_response()
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The router of the REST API.
pub fn router<H: ConnectApi>(herder: H) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list::<H>).post(create::<H>))
        .route("/connectors/{name}", get(info::<H>).delete(delete::<H>))
        .route(
            "/connectors/{name}/config",
            get(config::<H>).put(put_config::<H>),
        )
        .route("/connectors/{name}/status", get(status::<H>))
        .route("/connectors/{name}/tasks", get(tasks::<H>))
        .route(
            "/connectors/{name}/tasks/{id}/status",
            get(task_status::<H>),
        )
        .route(
            "/connectors/{name}/tasks/{id}/restart",
            post(restart_task::<H>),
        )
        .route("/connectors/{name}/restart", post(restart::<H>))
        .route("/connectors/{name}/pause", put(pause::<H>))
        .route("/connectors/{name}/resume", put(resume::<H>))
        .route("/connectors/{name}/stop", put(stop::<H>))
        .route(
            "/connectors/{name}/offsets",
            get(offsets::<H>)
                .patch(alter_offsets::<H>)
                .delete(reset_offsets::<H>),
        )
        .route("/connectors/{name}/topics", get(topics::<H>))
        .route("/connectors/{name}/topics/reset", put(reset_topics::<H>))
        .route("/connectors/{name}/metrics", get(metrics::<H>))
        .route("/connector-plugins", get(plugins::<H>))
        .route(
            "/connector-plugins/{plugin}/config/validate",
            put(validate::<H>),
        )
        .fallback(|| async { ApiError(Error::NotFound("HTTP 404 Not Found".into())) })
        .with_state(herder)
}

/// The values of `key` in a query string (`expand=status&expand=info`).
fn query_values(q: &Option<String>, key: &str) -> Vec<String> {
    q.as_deref()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .collect()
}

/// A boolean query parameter (absent: false).
fn query_flag(q: &Option<String>, key: &str) -> ApiResult<bool> {
    match query_values(q, key).last().map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v.is_empty() => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ApiError(Error::BadRequest(format!(
            "Query parameter {key} must be true or false, found {v}"
        )))),
    }
}

fn body(b: std::result::Result<axum::Json<Json>, JsonRejection>) -> ApiResult<Json> {
    b.map(|axum::Json(j)| j).map_err(|e| {
        ApiError(Error::BadRequest(format!(
            "Invalid request body: {}",
            e.body_text()
        )))
    })
}

async fn root() -> axum::Json<Json> {
    axum::Json(
        json!({"version": env!("CARGO_PKG_VERSION"), "commit": "sluice", "kafka_cluster_id": "sluice"}),
    )
}

async fn list<H: ConnectApi>(
    State(h): State<H>,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<Json>> {
    let expand = query_values(&q, "expand");
    let names = h.connectors().await?;
    if expand.is_empty() {
        return Ok(axum::Json(json!(names)));
    }
    let mut out = serde_json::Map::new();
    for n in names {
        let mut entry = serde_json::Map::new();
        if expand.iter().any(|e| e == "status") {
            entry.insert("status".into(), h.status(&n).await?);
        }
        if expand.iter().any(|e| e == "info") {
            entry.insert("info".into(), h.info(&n).await?);
        }
        out.insert(n, Json::Object(entry));
    }
    Ok(axum::Json(Json::Object(out)))
}

async fn create<H: ConnectApi>(
    State(h): State<H>,
    b: std::result::Result<axum::Json<Json>, JsonRejection>,
) -> ApiResult<(StatusCode, axum::Json<Json>)> {
    let j = body(b)?;
    let name = j["name"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| j["config"]["name"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ApiError(Error::BadRequest(
            "Connector name must be given in the request body's \"name\"".into(),
        )));
    }
    if !j["config"].is_object() {
        return Err(ApiError(Error::BadRequest(
            "The request body must contain a \"config\" object".into(),
        )));
    }
    let props: Props =
        json_config(&json!({"config": j["config"]})).map_err(|m| ApiError(Error::BadRequest(m)))?;
    let (_, info) = h.put_connector(&name, props, false).await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}

async fn info<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.info(&name).await?))
}

async fn delete<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(json!(h.config(&name).await?)))
}

async fn put_config<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
    b: std::result::Result<axum::Json<Json>, JsonRejection>,
) -> ApiResult<(StatusCode, axum::Json<Json>)> {
    let j = body(b)?;
    if !j.is_object() {
        return Err(ApiError(Error::BadRequest(
            "The request body must be a JSON object of the config".into(),
        )));
    }
    let props: Props =
        json_config(&json!({"config": j})).map_err(|m| ApiError(Error::BadRequest(m)))?;
    let (created, info) = h.put_connector(&name, props, true).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(info),
    ))
}

async fn status<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.status(&name).await?))
}

async fn tasks<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.tasks(&name).await?))
}

fn task_id(id: &str) -> ApiResult<usize> {
    id.parse()
        .map_err(|_| ApiError(Error::NotFound(format!("Task {id}"))))
}

async fn task_status<H: ConnectApi>(
    State(h): State<H>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.task_status(&name, task_id(&id)?).await?))
}

async fn restart_task<H: ConnectApi>(
    State(h): State<H>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    h.restart_task(&name, task_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let include_tasks = query_flag(&q, "includeTasks")?;
    let only_failed = query_flag(&q, "onlyFailed")?;
    let status = h.restart(&name, include_tasks, only_failed).await?;
    // Kafka's older form (neither flag) answers 204; the KIP-745 form 202 with the status.
    if !include_tasks && !only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response())
}

async fn pause<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.set_target(&name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.set_target(&name, TargetState::Started).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.set_target(&name, TargetState::Stopped).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn offsets<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.offsets(&name).await?))
}

async fn alter_offsets<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
    b: std::result::Result<axum::Json<Json>, JsonRejection>,
) -> ApiResult<axum::Json<Json>> {
    let j = body(b)?;
    Ok(axum::Json(h.alter_offsets(&name, &j).await?))
}

async fn reset_offsets<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.reset_offsets(&name).await?))
}

async fn topics<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.topics(&name).await?))
}

async fn reset_topics<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    h.reset_topics(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn metrics<H: ConnectApi>(
    State(h): State<H>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Json>> {
    Ok(axum::Json(h.metrics(&name).await?))
}

async fn plugins<H: ConnectApi>(
    State(h): State<H>,
    RawQuery(q): RawQuery,
) -> ApiResult<axum::Json<Json>> {
    let connectors_only = match query_values(&q, "connectorsOnly").last() {
        None => true,
        Some(v) => !v.eq_ignore_ascii_case("false"),
    };
    let version = env!("CARGO_PKG_VERSION");
    let mut out: Vec<Json> = h
        .plugins()
        .all()
        .iter()
        .map(|p| json!({"class": p.class, "type": p.kind.as_str(), "version": p.version}))
        .collect();
    if !connectors_only {
        out.extend(
            crate::transforms::transform_classes()
                .into_iter()
                .map(|c| json!({"class": c, "type": "transformation", "version": version})),
        );
        out.extend(
            crate::transforms::predicate_classes()
                .into_iter()
                .map(|c| json!({"class": c, "type": "predicate", "version": version})),
        );
        out.extend(
            crate::converter::CONVERTERS
                .iter()
                .map(|c| json!({"class": c[0], "type": "converter", "version": version})),
        );
    }
    Ok(axum::Json(Json::Array(out)))
}

async fn validate<H: ConnectApi>(
    State(h): State<H>,
    Path(plugin): Path<String>,
    b: std::result::Result<axum::Json<Json>, JsonRejection>,
) -> ApiResult<axum::Json<Json>> {
    let j = body(b)?;
    let props: Props =
        json_config(&json!({"config": j})).map_err(|m| ApiError(Error::BadRequest(m)))?;
    let (result, _) = h.validate(&plugin, &props)?;
    Ok(axum::Json(result))
}
