//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and the DTOs.

use utoipa::OpenApi;

use crate::auth::Role;
use crate::error::{Code, ErrorBody};
use crate::handlers::{config, intents, operator, quote, replay, system, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "baton", description = "baton's REST API v1: quote, sign, submit and follow intents; operate sagas and chains."),
    paths(
        quote::quote,
        intents::submit,
        intents::status,
        intents::events,
        operator::chains,
        operator::inventory,
        operator::sagas,
        operator::outcomes,
        operator::retry,
        replay::replay,
        operator::pause_chain,
        operator::resume_chain,
        operator::pause_all,
        operator::resume_all,
        operator::pauses,
        operator::actions,
        webhooks::create,
        webhooks::list,
        webhooks::show,
        webhooks::remove,
        webhooks::enable,
        webhooks::deliveries,
        webhooks::list_all,
        config::versions,
        config::propose,
        config::show,
        config::approve,
        config::schedule,
        config::reject,
        config::override_shadow,
        config::rollback,
        config::instances,
        system::me,
        system::metrics,
        system::healthz,
        system::openapi,
    ),
    components(schemas(ErrorBody, Code, Role, crate::dto::webhook::WebhookPayload, crate::dto::operator::SagaState, crate::dto::operator::OutcomeKind, crate::dto::intent::StreamedEvent)),
    modifiers(&Security, &Answers, &Tagged)
)]
/// The OpenAPI document of this API.
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers every operation can give beside its own, listed on each so that the document names
/// every status an operation answers: an authenticated one `401` and `429`, and `403` when it needs
/// an operator's key (every path under `/v1/operator/` and `/v1/sagas/`); one with a body `400`
/// (its shape), `413` and `415`; one with a path parameter `404`; one with query parameters `400`;
/// every one `500`. Each with the error body.
struct Answers;

impl utoipa::Modify for Answers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        for (path, item) in doc.paths.paths.iter_mut() {
            let operator = path.starts_with("/v1/operator/") || path.starts_with("/v1/sagas/");
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for parameter in op.parameters.iter_mut().flatten() {
                    if let Some(schema) = parameter.schema.as_mut() {
                        not_null(schema);
                    }
                }
                let parameters = op.parameters.as_deref().unwrap_or_default();
                let in_path = parameters
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = parameters
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let mut add: Vec<(&str, &str)> = Vec::new();
                if op.security.is_some() {
                    add.push(("401", "No API key, or an unknown one"));
                    add.push((
                        "429",
                        "Too many requests for this API key; see `Retry-After`",
                    ));
                    if operator {
                        add.push(("403", "The API key's role may not use this endpoint"));
                    }
                }
                if op.request_body.is_some() {
                    add.push((
                        "400",
                        "The body is not JSON, or not of the shape stated here",
                    ));
                    add.push(("413", "The body is larger than the server accepts"));
                    add.push(("415", "The body is not `application/json`"));
                }
                if in_query {
                    add.push(("400", "A query parameter is not of the shape stated here"));
                }
                if in_path {
                    add.push(("400", "A path parameter is not of the shape stated here"));
                    add.push(("404", "No such resource"));
                }
                add.push((
                    "500",
                    "Something failed inside baton; the detail is in its logs",
                ));
                for (status, description) in add {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_answer(description));
                }
            }
        }
    }
}

/// A parameter's schema without `null`: an optional parameter is one a request leaves out; no
/// header, query or path value is JSON `null` (utoipa writes an `Option` as nullable).
fn not_null(schema: &mut utoipa::openapi::RefOr<utoipa::openapi::Schema>) {
    use utoipa::openapi::schema::{SchemaType, Type};
    use utoipa::openapi::{RefOr, Schema};
    let RefOr::T(inner) = schema else {
        return;
    };
    match inner {
        Schema::Object(object) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
        }
        Schema::OneOf(one_of) => {
            one_of.items.retain(|item| {
                !matches!(item, RefOr::T(Schema::Object(o))
                    if o.schema_type == SchemaType::Type(Type::Null))
            });
            if one_of.items.len() == 1 {
                let only = one_of.items.remove(0);
                *schema = only;
            }
        }
        _ => {}
    }
}

/// An error answer: `description`, with the error body.
fn error_answer(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// An enum serde writes externally tagged (`{"at": 1767225600}`, `{"chain": 1001}`) is an object
/// of exactly its variant's one key: its variants' object schemas say so
/// (`additionalProperties: false`), as serde refuses any other key.
struct Tagged;

impl utoipa::Modify for Tagged {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::AdditionalProperties;
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::OneOf(one_of)) = schema else {
                continue;
            };
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(variant)) = item
                    && variant.properties.len() == 1
                    && variant.required.len() == 1
                    && variant.properties.contains_key(&variant.required[0])
                {
                    variant.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}
