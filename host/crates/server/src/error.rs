//! The API's error shape, `{"error": {"code": "...", "message": "..."}}`,
//! the mapping from module errors to status codes, and a JSON extractor whose
//! rejections (bad JSON, wrong content type, body too large) use that shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use junction_app::AppError;
use junction_app::registry::RegistryError;
use junction_oauth::FlowError;
use junction_store::StoreError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code.
    pub code: &'static str,
    /// What is wrong, in words.
    pub message: String,
    /// The request field that is wrong, when one is.
    pub field: Option<&'static str>,
    /// What failed inside the server: for the log, never for the client.
    internal: Option<String>,
}

/// An internal failure's detail, carried on its response so that the
/// request log (the server's outermost middleware) logs it once.
#[derive(Debug, Clone)]
pub struct InternalFailure(pub String);

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// e.g. `not-found`, `invalid-request`, `unauthorized`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The request field that is wrong (its JSON path, e.g. `oauth.token_url`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            internal: None,
        }
    }

    /// 400 `invalid-request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", message)
    }

    /// 404 `not-found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// 409 `conflict`: well formed, but the resource's state refuses it.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413 `too-large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", message)
    }

    /// A 500 for `err`, its whole chain of causes kept for the log.
    pub fn failed(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut detail = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::internal(detail)
    }

    /// 500 `internal`; the detail goes to the log, not the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; see its log",
        );
        error.internal = Some(detail.to_string());
        error
    }

    /// The message for a person, where a page shows it instead of the API
    /// answering with it (the console); an internal failure is logged here,
    /// since no API response will carry it to the request log.
    pub fn into_message(self) -> String {
        if let Some(detail) = &self.internal {
            tracing::error!(error = %detail, "internal error");
        }
        self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field.map(str::to_owned),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(detail) = self.internal {
            response.extensions_mut().insert(InternalFailure(detail));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => ApiError::not_found(err.to_string()),
            // A service in use: the request is well formed, its connections refuse it.
            StoreError::Exists { .. } | StoreError::ServiceInUse { .. } => {
                ApiError::conflict(err.to_string())
            }
            StoreError::Invalid(message) => ApiError::invalid(message),
            other => ApiError::failed(&other),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Field(field) => {
                let mut error = ApiError::invalid(field.to_string());
                error.field = Some(field.field);
                error
            }
            AppError::Invalid(message) => ApiError::invalid(message),
            AppError::NotFound(message) => ApiError::not_found(message),
            AppError::Conflict(message) => ApiError::conflict(message),
            AppError::TooLarge(message) => ApiError::too_large(message),
            AppError::Unavailable(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin-unavailable",
                message,
            ),
            AppError::Registry(registry) => registry.into(),
            AppError::Store(store) => store.into(),
            other @ (AppError::Catalog(_) | AppError::NotKept(_)) => ApiError::failed(&other),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::TooLarge { .. } => ApiError::too_large(err.to_string()),
            RegistryError::Load(load) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-component",
                load.to_string(),
            ),
            RegistryError::InvalidName(_)
            | RegistryError::Manifest(_)
            | RegistryError::UnknownConnection(_)
            | RegistryError::NotRequested(_) => ApiError::invalid(err.to_string()),
            RegistryError::NotFound(_) | RegistryError::NoSuchVersion { .. } => {
                ApiError::not_found(err.to_string())
            }
            RegistryError::Store(store) => store.into(),
            other @ (RegistryError::VersionNotKept(_) | RegistryError::Worker(_)) => {
                ApiError::failed(&other)
            }
        }
    }
}

/// `axum::Json`, with rejections in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => from_tree(value).map(ApiJson),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON body for the routes whose free-form part is a payload kept as
/// sent (a `RawValue`): read straight into `T` when it reads that way, so
/// the busiest routes do not build a tree of the whole body only to take
/// it apart again. A body that does not is read the [`ApiJson`] way, so
/// what it accepts and every error it answers are the same.
pub struct PayloadJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PayloadJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The content type, the size limit and the syntax as `ApiJson` checks them.
        let raw =
            match axum::Json::<Box<serde_json::value::RawValue>>::from_request(req, state).await {
                Ok(axum::Json(raw)) => raw,
                Err(rejection) => return Err(json_rejection(rejection)),
            };
        let text = raw.get();
        if text.starts_with('{')
            && let Ok(value) = serde_json::from_str::<T>(text)
        {
            return Ok(PayloadJson(value));
        }
        match serde_json::from_str(text) {
            Ok(value) => from_tree(value).map(PayloadJson),
            Err(err) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-json",
                format!("the body is not valid JSON: {err}"),
            )),
        }
    }
}

/// A request body's JSON `value` as `T`: an object, integral floats in the
/// API's own fields read as integers, and a 400 naming the field that is wrong.
fn from_tree<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    // Every body is an object: serde would also build a struct from an array.
    let serde_json::Value::Object(map) = &mut value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            "the body must be a JSON object",
        ));
    };
    // The API's own fields only: a payload is the sender's JSON, kept as sent.
    map.iter_mut()
        .filter(|(key, _)| key.as_str() != "payload")
        .for_each(|(_, v)| integral_floats_as_integers(v));
    // A body that is JSON but not of the expected shape is a 400 naming
    // the field, like every other invalid request.
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = if path == "." {
            format!("the body is not valid: {}", err.inner())
        } else {
            format!("`{path}` is not valid: {}", err.inner())
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", message)
    })
}

/// `1068.0` is an integer in JSON Schema (and JavaScript): accept it where
/// an integer is expected, as the API description promises.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = if f < 0.0 {
                    serde_json::Value::from(f as i64)
                } else {
                    serde_json::Value::from(f as u64)
                };
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        _ => "invalid-json",
    };
    let message = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the body must be JSON with `Content-Type: application/json`".to_owned()
        }
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this endpoint accepts".to_owned()
        }
        _ => rejection.body_text(),
    };
    ApiError::new(status, code, message)
}

/// The API's answer to a failed OAuth flow.
pub(crate) fn flow_error(err: FlowError) -> ApiError {
    match err {
        FlowError::UnknownConnection(_) => ApiError::not_found(err.to_string()),
        // The request is well formed; the connection's kind or its
        // service's settings refuse it.
        FlowError::NotOAuth(_) | FlowError::Misconfigured(_) | FlowError::MissingService { .. } => {
            ApiError::conflict(err.to_string())
        }
        FlowError::Token(_) | FlowError::Metadata(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "provider-error", err.to_string())
        }
        FlowError::BadState | FlowError::Denied(_) => ApiError::invalid(err.to_string()),
        FlowError::NothingToRefresh(_) => {
            ApiError::new(StatusCode::CONFLICT, "nothing-to-refresh", err.to_string())
        }
        FlowError::SharedFailure(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "provider-error", err.to_string())
        }
        FlowError::Store(store) => store.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde::Deserialize;
    use serde_json::value::RawValue;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        kind: String,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        payload: Option<Box<RawValue>>,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    /// The body read both ways: straight, and through a tree.
    async fn both(
        content_type: Option<&str>,
        body: &str,
    ) -> (Result<Probe, ApiError>, Result<Probe, ApiError>) {
        let straight = PayloadJson::<Probe>::from_request(request(content_type, body), &())
            .await
            .map(|PayloadJson(probe)| probe);
        let tree = ApiJson::<Probe>::from_request(request(content_type, body), &())
            .await
            .map(|ApiJson(probe)| probe);
        (straight, tree)
    }

    #[tokio::test]
    async fn a_payload_body_is_kept_as_sent_and_refused_as_the_tree_way_refuses_it() {
        const JSON: Option<&str> = Some("application/json");
        let (straight, tree) = both(JSON, r#"{"kind":"k","payload":{"n": 1,  "x":[1.0]}}"#).await;
        let (straight, tree) = (straight.unwrap(), tree.unwrap());
        assert_eq!(straight.kind, "k");
        assert_eq!(straight.payload.unwrap().get(), r#"{"n": 1,  "x":[1.0]}"#);
        assert_eq!(tree.payload.unwrap().get(), r#"{"n":1,"x":[1.0]}"#);

        // What reading straight refuses goes the tree's way: an integral
        // float where an integer belongs, a repeated field.
        let (straight, _) = both(JSON, r#"{"kind":"k","count":3.0}"#).await;
        assert_eq!(straight.unwrap().count, Some(3));
        let (straight, _) = both(JSON, r#"{"kind":"a","kind":"b"}"#).await;
        assert_eq!(straight.unwrap().kind, "b");

        for (content_type, body, code) in [
            (JSON, r#"{"kind":1}"#, "invalid-json"),
            (JSON, r#"{"kind":"k","other":1}"#, "invalid-json"),
            (JSON, r#"["k"]"#, "invalid-json"),
            (JSON, r#"{"kind":"k""#, "invalid-json"),
            (JSON, "", "invalid-json"),
            (None, r#"{"kind":"k"}"#, "unsupported-media-type"),
            (
                Some("text/plain"),
                r#"{"kind":"k"}"#,
                "unsupported-media-type",
            ),
        ] {
            let (straight, tree) = both(content_type, body).await;
            let (straight, tree) = (straight.unwrap_err(), tree.unwrap_err());
            assert_eq!(straight.code, code, "{body}");
            assert_eq!(
                (straight.status, straight.code, &straight.message),
                (tree.status, tree.code, &tree.message),
                "{body}"
            );
        }
    }
}
