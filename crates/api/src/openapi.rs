//! The OpenAPI 3.1 document, generated from the handlers' annotations, and its route.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, Response as ApiResponse, ResponseBuilder,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorCode};
use crate::state::AppState;

/// The name of the bearer security scheme in the document.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "backfill",
        description = "Durable, resumable backfills of Polygon.io aggregates: submit jobs, follow \
                       their progress live, and read the stored candles back.\n\nEvery error \
                       answers `{\"error\": {\"code\", \"message\", \"details\"}}` with a stable \
                       snake_case code (see the ErrorCode schema)."
    ),
    tags(
        (name = "jobs", description = "Backfill jobs: submit, follow, cancel, retry"),
        (name = "candles", description = "Stored candles and their coverage"),
        (name = "schedules", description = "Schedules that keep series current, and the universes they name"),
        (name = "operations", description = "Probes, metrics and this document (never behind the token)"),
        (name = "server", description = "What this server is: its version, and whether its data is simulated"),
    ),
    components(schemas(ErrorBody, ErrorCode))
)]
struct ApiDoc;

/// The route serving the document.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The base document the routers add their paths to.
pub(crate) fn base() -> Document {
    ApiDoc::openapi()
}

/// The serialised document, shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiJson(pub(crate) Arc<str>);

/// The OpenAPI document.
///
/// This API's OpenAPI 3.1 document: every route, parameter, body, response and error.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0.to_string(),
    )
        .into_response()
}

/// Adds what every operation shares: the bearer requirement and its 401 on `/api/v1` routes,
/// a 503 where storage is read, and a 500 everywhere, all in the error shape.
pub(crate) fn finish(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "Required on every /api/v1 route when the server has an API token",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let protected = path.starts_with("/api/v1/");
        let stored = (protected && path != crate::dashboard::INFO_PATH) || path == "/readyz";
        for operation in operations(item) {
            if protected {
                operation.security =
                    Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                add_error(operation, "401", "unauthorized: a missing or wrong bearer token (only when the server has a token)");
            }
            if stored {
                add_error(
                    operation,
                    "503",
                    "storage_unavailable (or not_ready): the database does not answer",
                );
            }
            add_error(
                operation,
                "500",
                "internal_error: the cause is logged, not sent",
            );
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn add_error(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(error_response(description)));
}

fn error_response(description: &str) -> ApiResponse {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}
